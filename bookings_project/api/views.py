"""The base of every API view and viewset: rate limit and its headers, the success envelope."""

import time

from rest_framework.response import Response
from rest_framework.views import APIView

from .errors import RateLimited

# The methods an API view may answer. OPTIONS and TRACE are left out, so they are 405 and
# never listed in ``Allow`` (DRF's OPTIONS would answer a metadata document of its own).
API_METHODS = ["get", "post", "put", "patch", "delete", "head"]


class RateLimitedMixin:
    """Refuses a key's request over its rate limit and puts the window's state on the
    response. Mixed into every API view and viewset."""

    http_method_names = API_METHODS

    def perform_authentication(self, request):
        # Counted as the key is looked up (``bookings.auth``, one trip to the cache for both),
        # before scopes, so every response to a key (a 403 included) carries its headers.
        super().perform_authentication(request)
        state = getattr(request, "rate_limit", None)
        if state is not None and state.exceeded:
            raise RateLimited(
                f"Rate limit of {state.limit} requests a minute exceeded.",
                headers={"Retry-After": str(state.retry_after(time.time()))},
            )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(request, "rate_limit", None)
        if state is not None:
            for header, value in state.headers().items():
                response[header] = value
        return response


class ApiView(RateLimitedMixin, APIView):
    #: HTTP method → scope the key must carry. Empty: no key needed.
    required_scopes: dict[str, str] = {}


def ok(status: int = 200, headers: dict | None = None, **payload) -> Response:
    return Response({"success": True, **payload}, status=status, headers=headers)
