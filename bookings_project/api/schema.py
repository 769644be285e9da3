"""The OpenAPI document's view."""

from drf_spectacular.views import SpectacularJSONAPIView

from .renderers import Utf8JSONRenderer
from .views import API_METHODS


class SchemaView(SpectacularJSONAPIView):
    """``GET /v1/schema``. Its errors (a 405 for another method) are the API's JSON envelope,
    not an ``application/vnd.oai.openapi+json`` document."""

    http_method_names = API_METHODS

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = Utf8JSONRenderer()
            request.accepted_media_type = Utf8JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
