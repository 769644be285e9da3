"""The OpenAPI document (valid, public) and the docs page (offline: local assets only)."""

import re
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

READ_OPERATIONS = {
    ("/v1/bookings", "get"): "bookings_list",
    ("/v1/bookings/{booking_id}", "get"): "bookings_retrieve",
    ("/v1/event-types", "get"): "event_types_list",
    ("/v1/event-types/{event_type_id}", "get"): "event_types_retrieve",
    ("/v1/team/members", "get"): "team_members_list",
    ("/v1/team/members/{member_id}", "get"): "team_members_retrieve",
}
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
EXTERNAL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)


@pytest.fixture(scope="module")
def schema_file(tmp_path_factory, django_db_blocker):
    path = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    with django_db_blocker.unblock():
        # Fails on any warning or an invalid OpenAPI document.
        call_command(
            "spectacular", "--validate", "--fail-on-warn", "--file", str(path), stderr=StringIO()
        )
    return yaml.safe_load(path.read_text())


def test_schema_generates_and_validates_without_warnings(schema_file):
    assert schema_file["openapi"].startswith("3.")
    assert schema_file["info"]["title"] == "Bookings API"


def test_schema_documents_every_read_endpoint(schema_file):
    for (path, method), operation_id in READ_OPERATIONS.items():
        operation = schema_file["paths"][path][method]
        assert operation["operationId"] == operation_id
        assert "200" in operation["responses"]
        for status in ("401", "403", "429"):
            assert status in operation["responses"], (path, status)


def test_schema_documents_error_responses_with_the_envelope(schema_file):
    ref = schema_file["paths"]["/v1/bookings/{booking_id}"]["get"]["responses"]["404"]
    assert ref["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    envelope = schema_file["components"]["schemas"]["ErrorEnvelope"]
    assert set(envelope["properties"]) == {"success", "error"}


def test_schema_documents_the_list_parameters(schema_file):
    parameters = schema_file["paths"]["/v1/bookings"]["get"]["parameters"]

    assert {p["name"] for p in parameters} >= {
        "status",
        "event_type_id",
        "assigned_to_id",
        "attendee_email",
        "start_date",
        "end_date",
        "limit",
        "cursor",
    }


def test_schema_documents_both_key_headers(schema_file):
    schemes = schema_file["components"]["securitySchemes"]

    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer sk_live_…",
    }
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


def test_schema_endpoint_needs_no_key():
    response = Client().get("/v1/schema")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert set(READ_OPERATIONS) <= {
        (path, method) for path, item in document["paths"].items() for method in item
    }


def test_schema_as_json():
    response = Client().get("/v1/schema?format=json")

    assert response.status_code == 200
    assert response.json()["paths"]["/v1/bookings"]["get"]["operationId"] == "bookings_list"


def _assets(html: str) -> list[str]:
    return ASSET.findall(html)


def test_docs_page_is_public_and_uses_only_local_assets():
    client = Client()
    response = client.get("/docs")

    assert response.status_code == 200
    html = response.content.decode()
    assets = _assets(html)
    assert assets, "the page loads its viewer from somewhere"
    assert all(asset.startswith("/static/") for asset in assets), assets
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "cdn" not in html.lower()
    assert '"/v1/schema"' in html
    # Offline means served by us: every asset answers here.
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_redoc_page_uses_only_local_assets():
    response = Client().get("/docs/redoc")

    assert response.status_code == 200
    html = response.content.decode()
    assert all(asset.startswith("/static/") for asset in _assets(html)), _assets(html)
    assert not EXTERNAL.search(html)


def test_schema_describes_ids_filters_and_limits_precisely():
    import re

    from bookings.ids import new_id

    document = Client().get("/v1/schema").json()
    detail = document["paths"]["/v1/bookings/{booking_id}"]["get"]["parameters"]
    pattern = next(p for p in detail if p["name"] == "booking_id")["schema"]["pattern"]
    assert re.match(pattern, new_id("bkg"))
    assert not re.match(pattern, new_id("evt"))
    listing = {
        p["name"]: p["schema"] for p in document["paths"]["/v1/bookings"]["get"]["parameters"]
    }
    assert (listing["limit"]["minimum"], listing["limit"]["maximum"]) == (1, 100)
    assert re.match(listing["status"]["pattern"], "SCHEDULED,NO_SHOW")
    assert not re.match(listing["status"]["pattern"], "SCHEDULED,")
    body = document["components"]["schemas"]["BookingCreateRequest"]["properties"]
    assert re.match(body["event_type_id"]["pattern"], new_id("evt"))


def test_request_bodies_refuse_unknown_fields(schema_file):
    components = schema_file["components"]["schemas"]
    requests = [name for name in components if name.endswith("Request")]

    assert "BookingCreateRequest" in requests
    for name in requests:
        assert components[name]["additionalProperties"] is False, name


def test_names_and_reasons_say_control_characters_are_refused(schema_file):
    components = schema_file["components"]["schemas"]

    assert components["AttendeeInputRequest"]["properties"]["name"]["pattern"] == (
        "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )
    reason = components["CancelRequest"]["properties"]["reason"]
    assert reason["oneOf"][0]["pattern"] == "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"


def test_a_returned_booking_links_to_every_operation_on_it(schema_file):
    on_one_booking = {
        operation["operationId"]
        for path, item in schema_file["paths"].items()
        if "{booking_id}" in path
        for operation in item.values()
    }
    created = schema_file["paths"]["/v1/bookings"]["post"]["responses"]["201"]
    cancelled = schema_file["paths"]["/v1/bookings/{booking_id}/cancel"]["post"]["responses"]

    assert {"bookings_retrieve", "bookings_cancel", "bookings_history"} <= on_one_booking
    assert set(created["links"]) == on_one_booking
    assert created["links"]["bookings_cancel"] == {
        "operationId": "bookings_cancel",
        "parameters": {"booking_id": "$response.body#/booking/id"},
    }
    assert set(cancelled["200"]["links"]) == on_one_booking
    assert "links" not in cancelled["404"]


# The contract's table of endpoints, as (path, method) → who may call it.
CONTRACT_ENDPOINTS = {
    ("/v1/bookings", "post"),
    ("/v1/bookings/{booking_id}", "get"),
    ("/v1/bookings", "get"),
    ("/v1/bookings/{booking_id}", "patch"),
    ("/v1/bookings/{booking_id}/confirm", "post"),
    ("/v1/bookings/{booking_id}/complete", "post"),
    ("/v1/bookings/{booking_id}/no-show", "post"),
    ("/v1/bookings/{booking_id}/cancel", "post"),
    ("/v1/bookings/{booking_id}/reschedule", "post"),
    ("/v1/bookings/{booking_id}/history", "get"),
    ("/v1/event-types", "get"),
    ("/v1/event-types/{event_type_id}", "get"),
    ("/v1/team/members", "get"),
    ("/v1/team/members/{member_id}", "get"),
    ("/v1/schema", "get"),
    ("/docs", "get"),
    ("/healthz", "get"),
    ("/readyz", "get"),
}
PUBLIC = {"/v1/schema", "/docs", "/healthz", "/readyz"}


def test_the_document_describes_every_endpoint_of_the_contract():
    document = Client().get("/v1/schema").json()

    described = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "put", "delete"}
    }
    assert described == CONTRACT_ENDPOINTS
    for path in PUBLIC:
        operation = document["paths"][path]["get"]
        assert operation["security"] == [], path
        assert "405" in operation["responses"], path


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/schema", "application/vnd.oai.openapi+json"),
        ("/docs", "text/html"),
        ("/healthz", "application/json"),
        ("/readyz", "application/json"),
    ],
)
def test_each_public_endpoint_answers_the_type_the_document_gives(path, content_type):
    document = Client().get("/v1/schema").json()
    response = Client().get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert content_type in document["paths"][path]["get"]["responses"]["200"]["content"]


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
def test_a_docs_page_that_fails_answers_the_envelope_not_html(path, tmp_path, settings):
    # Production serves static files through a manifest that `collectstatic` writes: without
    # it, the page cannot name its assets. The failure is the envelope (it was DRF's HTML
    # template, a bare "500 Internal Server Error").
    settings.STATIC_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }

    response = Client(raise_request_exception=False).get(path)

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "internal_error"
    assert "manifest" not in response.content.decode().lower()
