"""The OpenAPI document's views (the document, its two pages) and what the document adds."""

from drf_spectacular.views import (
    SpectacularJSONAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)
from rest_framework.exceptions import ValidationError

from .renderers import Utf8JSONRenderer
from .views import API_METHODS


class JsonErrorsMixin:
    """A view that answers a document or a page, whose errors are the API's JSON envelope
    nonetheless: DRF would render them with the view's own renderer (the docs pages' HTML
    template shows a bare "500 Internal Server Error")."""

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = Utf8JSONRenderer()
            request.accepted_media_type = Utf8JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class SchemaView(JsonErrorsMixin, SpectacularJSONAPIView):
    """``GET /v1/schema``. Its errors (a 405 for another method) are the API's JSON envelope,
    not an ``application/vnd.oai.openapi+json`` document."""

    http_method_names = API_METHODS

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # As on every /v1 endpoint, a parameter is never ignored: drf-spectacular would read
        # ?lang= and ?version=, and answer JSON to ?format=yaml. ?format=json is what it is.
        unknown = [
            name
            for name, values in request.query_params.lists()
            if (name, values) != ("format", ["json"])
        ]
        if unknown:
            raise ValidationError({name: ["Unknown parameter."] for name in unknown})


class PageMixin(JsonErrorsMixin):
    """A page for people: GET and HEAD only; another method (OPTIONS too) is 405 in the
    envelope, with ``Allow: GET, HEAD``, not an HTML error page."""

    http_method_names = ["get", "head"]


class SwaggerView(PageMixin, SpectacularSwaggerView):
    """``GET /docs``: the document for people (Swagger UI, served from our static files)."""


class RedocView(PageMixin, SpectacularRedocView):
    """``GET /docs/redoc``."""


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = {"$ref": "#/components/schemas/ErrorEnvelope"}
_STATUS = {
    "type": "object",
    "properties": {"success": {"type": "boolean", "enum": [True]}, "status": {"type": "string"}},
    "required": ["success", "status"],
}
_READY = {
    **_STATUS,
    "properties": {
        **_STATUS["properties"],
        "checks": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["success", "status", "checks"],
}

# The endpoints of the contract that are not DRF views (and the schema's own view, which
# drf-spectacular leaves out): described here so that the document covers all of them.
_PLUMBING = {
    "/v1/schema": (
        "schema_retrieve",
        "schema",
        "This OpenAPI 3 document.",
        {
            "200": {
                "description": "The document.",
                "content": {"application/vnd.oai.openapi+json": {"schema": {"type": "object"}}},
            },
            "400": _json(_ERROR, "A query parameter other than format=json."),
        },
    ),
    "/docs": (
        "docs_retrieve",
        "schema",
        "The document rendered for people (Swagger UI, served locally: works offline).",
        {"200": {"description": "An HTML page.", "content": {"text/html": {"schema": {}}}}},
    ),
    "/healthz": (
        "healthz_retrieve",
        "health",
        "Liveness: answers without any I/O.",
        {"200": _json(_STATUS, "Alive.")},
    ),
    "/readyz": (
        "readyz_retrieve",
        "health",
        "Readiness: the database, the cache and the broker each answer.",
        {
            "200": _json(_READY, "Ready."),
            "503": _json(_ERROR, 'Not ready: `details.down` names what is down ("not_ready").'),
        },
    ),
}


def schema_add_plumbing(result, generator, request, public):
    """drf-spectacular postprocessing hook: add the schema, docs and probe endpoints (public,
    GET and HEAD only; any other method is 405 in the envelope)."""
    for path, (operation_id, tag, description, responses) in _PLUMBING.items():
        result["paths"][path] = {
            "get": {
                "operationId": operation_id,
                "description": description,
                "tags": [tag],
                "security": [],
                "responses": {**responses, "405": _json(_ERROR, "Any method but GET or HEAD.")},
            }
        }
    return result
