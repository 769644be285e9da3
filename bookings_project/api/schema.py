"""The OpenAPI document's view."""

from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.exceptions import ValidationError

from .renderers import Utf8JSONRenderer
from .views import API_METHODS


class SchemaView(SpectacularJSONAPIView):
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

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = Utf8JSONRenderer()
            request.accepted_media_type = Utf8JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
