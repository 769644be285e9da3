"""OpenAPI extensions: how drf-spectacular documents our API-key authentication."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "bookings.auth.ApiKeyAuthentication"
    name = ["bearerAuth", "apiKeyHeader"]

    def get_security_requirement(self, auto_schema):
        # Alternatives (either header), not both at once: one requirement object each.
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer sk_live_…"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


def id_schema(prefix: str) -> dict:
    """An id we issue: the type prefix, then a 26-character ULID in Crockford's base 32."""
    return {"type": "string", "pattern": f"^{prefix}_[0-9A-HJKMNP-TV-Z]{{26}}$"}


class PrefixedIdFieldScheme(OpenApiSerializerFieldExtension):
    target_class = "bookings.fields.PrefixedIdField"

    def map_serializer_field(self, auto_schema, direction):
        return id_schema(self.target.prefix)
