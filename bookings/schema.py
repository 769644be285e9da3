"""OpenAPI extensions: how drf-spectacular documents our API-key authentication."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.views import SpectacularJSONAPIView

from .models import BookingStatus
from .renderers import Utf8JSONRenderer


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "bookings.auth.ApiKeyAuthentication"
    name = ["bearerAuth", "apiKeyHeader"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer sk_live_…"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


def id_schema(prefix: str) -> dict:
    """An id we issue: the type prefix, then a 26-character ULID in Crockford's base 32."""
    return {"type": "string", "pattern": f"^{prefix}_[0-9A-HJKMNP-TV-Z]{{26}}$"}


_STATUS = "|".join(BookingStatus.values)
STATUS_LIST_SCHEMA = {"type": "string", "pattern": f"^({_STATUS})(,({_STATUS}))*$"}
DATE_OR_TIME_SCHEMA = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
}


class PrefixedIdFieldScheme(OpenApiSerializerFieldExtension):
    target_class = "bookings.serializers.PrefixedIdField"

    def map_serializer_field(self, auto_schema, direction):
        return id_schema(self.target.prefix)


class SchemaView(SpectacularJSONAPIView):
    """``GET /v1/schema``. Its errors (a 405 for another method) are the API's JSON envelope,
    not an ``application/vnd.oai.openapi+json`` document."""

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = Utf8JSONRenderer()
            request.accepted_media_type = Utf8JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
