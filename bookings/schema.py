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


class TextFieldScheme(OpenApiSerializerFieldExtension):
    """A string without control characters: the pattern lets clients (and the fuzzer) know."""

    target_class = "bookings.fields.TextField"

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        return {**schema, "pattern": f"^[^{self.target.refused_characters}]*$"}


def id_schema(prefix: str) -> dict:
    """An id we issue: the type prefix, then a 26-character ULID in Crockford's base 32."""
    return {"type": "string", "pattern": f"^{prefix}_[0-9A-HJKMNP-TV-Z]{{26}}$"}


class PrefixedIdFieldScheme(OpenApiSerializerFieldExtension):
    target_class = "bookings.fields.PrefixedIdField"

    def map_serializer_field(self, auto_schema, direction):
        return id_schema(self.target.prefix)


BOOKING_ENVELOPE = "#/components/schemas/BookingEnvelope"


def schema_postprocess(result, generator, request, public):
    """What drf-spectacular cannot infer from the code.

    Request bodies refuse fields they do not know (``StrictSerializer``): each request
    component says so. And wherever a booking comes back, OpenAPI links lead from it to every
    operation on one booking (create → get, history, cancel, ...), for clients and for the
    fuzzer's stateful test.
    """
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    on_one_booking = sorted(
        operation["operationId"]
        for path, item in result["paths"].items()
        if "{booking_id}" in path
        for operation in item.values()
    )
    for item in result["paths"].values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") == BOOKING_ENVELOPE:
                    response["links"] = {
                        operation_id: {
                            "operationId": operation_id,
                            "parameters": {"booking_id": "$response.body#/booking/id"},
                        }
                        for operation_id in on_one_booking
                    }
    return result
