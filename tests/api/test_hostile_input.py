"""Hostile input the fuzzer found or was pointed at, each pinned by a plain test: a 400 (or
405) in the envelope, and nothing changed — no booking created, the booking as it was."""

import io
import json

import pytest
from rest_framework.test import APIClient

from bookings.models import Booking, IdempotencyKey
from tests.assertions import assert_error, assert_ok
from tests.bookings.booking_state import booking_create_via_api, patch, reschedule, snapshot
from tests.bookings.create_helpers import create_body, in_days, post_booking

pytestmark = pytest.mark.django_db

ADA = {"name": "Ada Lovelace", "email": "ada@example.com"}
# One of each kind of control character: C0 (with NUL, tab and line breaks), DEL, C1.
CONTROL = ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]
NOT_STRINGS = [123, 1.5, 0, True, [], {}]


@pytest.fixture
def booking(api, event_type):
    return booking_create_via_api(api, event_type, in_days(2), attendee=dict(ADA))


def _nothing_created(before: int) -> None:
    assert Booking.objects.count() == before
    assert not IdempotencyKey.objects.exists()


# --- A JSON number (or boolean, list, object) where the schema says string ----------------


@pytest.mark.parametrize("value", NOT_STRINGS)
@pytest.mark.parametrize(
    "field", ["name", "phone", "timezone"], ids=lambda field: f"attendee.{field}"
)
def test_create_refuses_a_non_string_attendee_field(api, event_type, field, value):
    before = Booking.objects.count()
    body = create_body(event_type, in_days(2), attendee={**ADA, field: value})

    error = assert_error(post_booking(api, body, key="k-1"), 400, "validation_error")

    assert set(error["details"]["attendee"]) == {field}
    _nothing_created(before)


@pytest.mark.parametrize("value", [123, 1.5, True])
@pytest.mark.parametrize("field", ["event_type_id", "assigned_to_id"])
def test_create_refuses_a_number_for_an_id(api, event_type, field, value):
    before = Booking.objects.count()
    body = create_body(event_type, in_days(2), **{field: value})

    error = assert_error(post_booking(api, body), 400, "validation_error")

    assert set(error["details"]) == {field}
    _nothing_created(before)


@pytest.mark.parametrize("value", NOT_STRINGS)
def test_patch_refuses_a_non_string_name_and_changes_nothing(api, booking, value):
    before = snapshot(booking.id)

    error = assert_error(
        patch(api, booking.id, {"attendee": {"name": value}}), 400, "validation_error"
    )

    assert error["details"] == {"attendee": {"name": ["Not a valid string."]}}
    assert snapshot(booking.id) == before


@pytest.mark.parametrize("value", NOT_STRINGS)
def test_cancel_refuses_a_non_string_reason_and_changes_nothing(api, booking, value):
    before = snapshot(booking.id)

    response = api.post(f"/v1/bookings/{booking.id}/cancel", {"reason": value}, format="json")

    error = assert_error(response, 400, "validation_error", details={"reason"})
    assert error["details"]["reason"] == ["Not a valid string."]
    assert snapshot(booking.id) == before


@pytest.mark.parametrize("value", NOT_STRINGS)
def test_reschedule_refuses_a_non_string_reason_and_changes_nothing(api, booking, value):
    before, count = snapshot(booking.id), Booking.objects.count()

    response = reschedule(api, booking.id, in_days(3), key="k-1", reason=value)

    assert_error(response, 400, "validation_error", details={"reason"})
    assert snapshot(booking.id) == before
    assert Booking.objects.count() == count


# --- Control characters ------------------------------------------------------------------


@pytest.mark.parametrize("character", CONTROL, ids=ascii)
def test_create_refuses_control_characters_in_the_name(api, event_type, character):
    before = Booking.objects.count()
    body = create_body(event_type, in_days(2), attendee={**ADA, "name": f"Ada{character}Lovelace"})

    response = post_booking(api, body, key="k-1")

    # NUL is refused by the JSON parser (PostgreSQL cannot store it); the others by the field.
    assert_error(response, 400, "validation_error")
    _nothing_created(before)


@pytest.mark.parametrize("character", CONTROL, ids=ascii)
def test_patch_refuses_control_characters_in_the_name(api, booking, character):
    before = snapshot(booking.id)

    response = patch(api, booking.id, {"attendee": {"name": f"Ada{character}"}})

    assert_error(response, 400, "validation_error")
    assert snapshot(booking.id) == before


@pytest.mark.parametrize(
    "character", ["\x00", "\x01", "\x0b", "\x0c", "\x1b", "\x7f", "\x85"], ids=ascii
)
def test_cancel_refuses_control_characters_in_the_reason(api, booking, character):
    before = snapshot(booking.id)

    response = api.post(
        f"/v1/bookings/{booking.id}/cancel", {"reason": f"no{character}"}, format="json"
    )

    assert_error(response, 400, "validation_error")
    assert snapshot(booking.id) == before


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f", "\x9f"], ids=ascii)
def test_reschedule_refuses_control_characters_in_the_reason(api, booking, character):
    before, count = snapshot(booking.id), Booking.objects.count()

    response = reschedule(api, booking.id, in_days(3), reason=f"moved{character}")

    assert_error(response, 400, "validation_error")
    assert snapshot(booking.id) == before
    assert Booking.objects.count() == count


def test_a_reason_may_have_several_lines_and_tabs(api, booking):
    reason = "Ill.\r\nBack next week:\tcall me."

    body = assert_ok(
        api.post(f"/v1/bookings/{booking.id}/cancel", {"reason": reason}, format="json"),
        "booking",
    )

    assert body["booking"]["cancellation"]["reason"] == reason
    booking.refresh_from_db()
    assert booking.cancellation_reason == reason


def test_a_name_may_have_any_printable_unicode(api, event_type):
    name = "Zoë Ødegård-Ñúñez 李小龍 🙂"

    body = assert_ok(
        post_booking(api, create_body(event_type, in_days(2), attendee={**ADA, "name": name})),
        "booking",
        201,
    )

    assert body["booking"]["attendee"]["name"] == name


# --- A method a route does not take -------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "delete", "trace"])
@pytest.mark.parametrize(
    "path", ["/v1/bookings?status=SCHEDULED", "/v1/team/members?is_active=true"]
)
def test_an_unknown_method_with_a_query_is_405_not_400(api, team, method, path):
    before = Booking.objects.count()

    response = api.generic(method.upper(), path)

    assert_error(response, 405, "method_not_allowed")
    assert Booking.objects.count() == before


# --- More query parameters than Django reads (DATA_UPLOAD_MAX_NUMBER_FIELDS, 1,000) ---------

TOO_MANY = "&".join(["a"] * 1001)


def _too_many_cases(booking_id: str) -> list[tuple[str, str, dict | None]]:
    one = f"/v1/bookings/{booking_id}"
    when = "2030-01-07T10:00:00Z"
    return [
        ("get", "/v1/bookings", None),
        ("get", one, None),
        ("get", f"{one}/history", None),
        ("get", "/v1/event-types", None),
        ("get", "/v1/team/members", None),
        ("get", "/v1/schema", None),
        ("post", "/v1/bookings", {}),
        ("patch", one, {"attendee": {"name": "Mallory"}}),
        ("post", f"{one}/confirm", {}),
        ("post", f"{one}/cancel", {}),
        ("post", f"{one}/complete", {}),
        ("post", f"{one}/reschedule", {"requested_time": when}),
        ("delete", "/v1/bookings", None),
    ]


@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_too_many_query_parameters_is_400_and_changes_nothing(api, booking, with_key):
    client = api if with_key else APIClient()
    before = snapshot(booking.pk)
    count = Booking.objects.count()

    for method, path, body in _too_many_cases(booking.pk):
        kwargs = {"format": "json", "data": body} if body is not None else {}
        response = getattr(client, method)(f"{path}?{TOO_MANY}", **kwargs)

        assert_error(response, 400, "bad_request")
        assert response.json()["error"]["message"] == "Too many query parameters or form fields."
        # Counted against the key like any answer to it (the rate-limit middleware).
        assert ("X-RateLimit-Remaining" in response) is with_key, (method, path)

    assert snapshot(booking.pk) == before
    assert Booking.objects.count() == count


def test_a_thousand_query_parameters_are_read_not_refused_as_too_many(api, booking):
    response = api.get("/v1/team/members?" + "&".join(["a"] * 1000))

    # Read, and then refused for what they say (an unknown filter), not for how many.
    assert_error(response, 400, "validation_error")


# --- An address the mail server could never be sent to -----------------------------------

# Django's email validator takes any character from U+00A1 up in a domain, but the email is
# sent with the domain in IDNA (punycode): a domain that has none would stay pending, failing
# every attempt. Refused at the door instead.
UNSENDABLE_EMAILS = [
    "ada@ex\u202eample.com",  # a right-to-left override: prohibited by IDNA
    "ada@ex\u200eample.com",  # a left-to-right mark
    "ada@" + "\u00e4" * 60 + ".com",  # 60 characters, but over 63 once in punycode
]


@pytest.mark.parametrize("email", UNSENDABLE_EMAILS, ids=ascii)
def test_create_refuses_an_email_whose_domain_has_no_idna_form(api, event_type, email):
    before = Booking.objects.count()
    body = create_body(event_type, in_days(2), attendee={**ADA, "email": email})

    error = assert_error(post_booking(api, body, key="k-1"), 400, "validation_error")

    assert set(error["details"]["attendee"]) == {"email"}
    _nothing_created(before)


@pytest.mark.parametrize("email", UNSENDABLE_EMAILS, ids=ascii)
def test_patch_refuses_an_email_whose_domain_has_no_idna_form(api, booking, email):
    before = snapshot(booking.id)

    response = patch(api, booking.id, {"attendee": {"email": email}})

    assert_error(response, 400, "validation_error")
    assert snapshot(booking.id) == before


@pytest.mark.parametrize("email", ["a@b", "not an address", "ada@ex\u202eample.com"], ids=ascii)
def test_a_bad_address_is_explained_once(api, event_type, booking, email):
    body = create_body(event_type, in_days(2), attendee={**ADA, "email": email})
    created = assert_error(post_booking(api, body), 400, "validation_error")
    patched = assert_error(
        patch(api, booking.id, {"attendee": {"email": email}}), 400, "validation_error"
    )

    for error in (created, patched):
        assert error["details"]["attendee"] == {"email": ["Enter a valid email address."]}


@pytest.mark.parametrize("email", ["ada@exämple.com", "ada@例え.テスト", "ada@[127.0.0.1]"])
def test_an_international_domain_is_accepted(api, event_type, email):
    body = create_body(event_type, in_days(2), attendee={**ADA, "email": email})

    body = assert_ok(post_booking(api, body), "booking", 201)

    assert body["booking"]["attendee"]["email"] == email


# Domains IDNA 2003 (Django's SMTP backend) folds into another domain: refused, naming the
# domain's own form, instead of showing one address and mailing another.
FOLDED_DOMAINS = [
    ("ada@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "example.com"),  # fullwidth
    ("ada@\ufb00.com", "ff.com"),  # a ligature
    ("ada@exa\u0301mple.com", "ex\u00e1mple.com"),  # not in NFC
]


@pytest.mark.parametrize(("email", "canonical"), FOLDED_DOMAINS, ids=ascii)
def test_a_domain_written_other_than_its_own_form_is_refused_naming_it(
    api, event_type, booking, email, canonical
):
    before = Booking.objects.count()
    body = create_body(event_type, in_days(3), attendee={**ADA, "email": email})

    created = post_booking(api, body)
    patched = patch(api, booking.pk, {"attendee": {"email": email}})

    for response in (created, patched):
        details = assert_error(response, 400, "validation_error")
        assert f"Write the domain as {canonical}:" in str(details), details
    assert Booking.objects.count() == before


def test_a_german_sharp_s_domain_is_mailed_to_itself_not_to_ss(
    api, event_type, mailoutbox, django_capture_on_commit_callbacks
):
    body = create_body(event_type, in_days(2), attendee={**ADA, "email": "ada@stra\u00dfe.de"})

    with django_capture_on_commit_callbacks(execute=True):
        booking = assert_ok(post_booking(api, body), "booking", 201)["booking"]

    assert booking["attendee"]["email"] == "ada@stra\u00dfe.de"
    # IDNA 2008's form of straße.de; Django's own (IDNA 2003) would be strasse.de, another
    # domain with perhaps another owner.
    [message] = mailoutbox
    assert message.to == ["ada@xn--strae-oqa.de"]
    assert message.recipients() == ["ada@xn--strae-oqa.de"]


# --- A body cut short: fewer bytes than its Content-Length --------------------------------


def _cut_short(body: dict, padding: int = 100) -> dict:
    """WSGI environ for a body whose connection closed before its Content-Length: the bytes
    that arrived are whole JSON (a client padding with white space), the rest never came."""
    data = json.dumps(body).encode()
    return {
        "wsgi.input": io.BytesIO(data),
        "CONTENT_LENGTH": str(len(data) + padding),
        "content_type": "application/json",
    }


def test_a_create_cut_short_is_400_and_creates_nothing(api, event_type):
    before = Booking.objects.count()
    body = create_body(event_type, in_days(2), attendee=dict(ADA))

    response = api.generic("POST", "/v1/bookings", **_cut_short(body), HTTP_IDEMPOTENCY_KEY="k")

    assert_error(response, 400, "bad_request")
    _nothing_created(before)


@pytest.mark.parametrize(
    ("method", "action", "body"),
    [
        ("POST", "/cancel", {"reason": "cut"}),
        ("PATCH", "", {"attendee": {"name": "Cut"}}),
        ("POST", "/reschedule", {"requested_time": "2030-01-01T10:00:00Z"}),
    ],
)
def test_a_change_cut_short_is_400_and_changes_nothing(api, booking, method, action, body):
    before, count = snapshot(booking.id), Booking.objects.count()

    response = api.generic(method, f"/v1/bookings/{booking.id}{action}", **_cut_short(body))

    assert_error(response, 400, "bad_request")
    assert snapshot(booking.id) == before
    assert Booking.objects.count() == count


# --- The schema takes no parameter either ------------------------------------------------


@pytest.mark.parametrize(
    "query", ["format=yaml", "format=json&format=json", "lang=de", "version=2", "x=1"]
)
def test_the_schema_refuses_any_query_parameter(client, query):
    name = query.partition("=")[0]

    error = assert_error(client.get(f"/v1/schema?{query}"), 400, "validation_error")

    assert error["details"] == {name: ["Unknown parameter."]}


@pytest.mark.parametrize("query", ["", "?format=json"])
def test_the_schema_without_parameters_is_the_document(client, query):
    response = client.get(f"/v1/schema{query}")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
