"""OpenAPI extensions: how drf-spectacular documents our API-key authentication."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)

from .models import BookingStatus


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
