import re
import time
import uuid

from django.conf import settings
from django.db import DatabaseError
from django.utils.log import log_response
from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings

from .errors import (
    RateLimited,
    api_error_response,
    django_error_response,
    error_response,
    is_api_path,
)
from .request_id import current_request_id

_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
_CONTENT_LENGTH = re.compile(r"^[0-9]{1,18}$")


class RequestIdMiddleware:
    """Echo the client's ``X-Request-Id`` (when sane) or make one; put it on every response
    and, for the duration of the request, on every log line (``current_request_id``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        # Every log line of the request carries the id (see request_id.py), then no other does.
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
            response["X-Request-Id"] = request.request_id
            if response.status_code >= 400:
                # Django logs a 4xx/5xx ("Not Found: /v1/…") after the outermost middleware has
                # returned, when the id is gone. Log it here, the same way; log_response marks the
                # response, so Django does not log it a second time.
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
            return response
        finally:
            current_request_id.reset(token)


class RateLimitEveryAnswerMiddleware:
    """Under /v1, an answer given before any view read the request's key still counts against
    the key and carries its ``X-RateLimit-*`` headers, as the contract says of every response:
    an unknown path (404), a body refused unread (413, 411, a malformed Content-Length), an
    ``Accept`` nothing can serve (406). Over the limit such a request is 429 with
    ``Retry-After``, as any other. A request without a key, or with one that is not valid, is
    answered as it was; so is a 5xx (the database or the cache may be what failed).

    A response that has the headers was counted by its view; one that has none was not (every
    view counts its key before anything else it refuses, 406 aside: DRF negotiates first).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            "X-RateLimit-Limit" in response
            or response.status_code >= 500
            or response.status_code == 401
            or not is_api_path(request.path_info)
        ):
            return response
        state = _key_admitted(request)
        if state is None:
            return response
        if state.exceeded:
            response = api_error_response(RateLimited.over(state, time.time()))
        for header, value in state.headers().items():
            response[header] = value
        return response


def _key_admitted(request):
    """The request's key authenticated as a view would (counted once, in the same trip to the
    cache), and its rate-limit state; None without a valid key."""
    try:
        for authentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
            if authentication().authenticate(request) is not None:
                return getattr(request, "rate_limit", None)
    except (APIException, DatabaseError):  # a key refused, or not readable now
        return None
    return None


class ApiJsonErrorsMiddleware:
    """Under /v1, an error answered by Django itself as HTML (with ``DEBUG`` on: the technical
    page of a disallowed ``Host`` or of an exception raised outside a view) becomes the
    envelope. Our own errors are JSON already and pass untouched."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path_info)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            replacement = django_error_response(response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response


class BodySizeLimitMiddleware:
    """Refuse bodies over ``API_MAX_BODY_BYTES`` with 413 before anything reads them, and a
    body without a Content-Length (chunked) with 411: it would be read as empty."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("HTTP_TRANSFER_ENCODING") and not request.META.get("CONTENT_LENGTH"):
            # Django reads a body only as far as Content-Length says: without one, a chunked
            # body would be read as empty and the request carried out without it (a cancel
            # with its defaults, a PATCH answering 200 with nothing changed).
            return error_response(
                411,
                "length_required",
                "Send the request body with a Content-Length (chunked bodies are not read).",
            )
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not _CONTENT_LENGTH.match(length):  # "-1", "+10", " 10", "1e3": malformed
            return error_response(400, "bad_request", "Content-Length is not a number.")
        size = int(length)
        if size > settings.API_MAX_BODY_BYTES:
            limit_kib = settings.API_MAX_BODY_BYTES // 1024
            return error_response(
                413,
                "payload_too_large",
                f"The request body is larger than {limit_kib} KiB.",
                {"max_bytes": settings.API_MAX_BODY_BYTES},
            )
        return self.get_response(request)


class NulInUrlMiddleware:
    """Outside /v1 (the admin, above all), a URL with NUL in its path or query string is 400.

    PostgreSQL cannot hold NUL in text, so an admin filter, search or object id carrying one
    raised ``DataError`` out of the query: a 500. The API checks its own ids and parameters
    (an id with NUL is 404 like any unknown id), so /v1 is left to answer as it does.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_path(request.path_info) and (
            "\x00" in request.path_info
            or any(
                "\x00" in key or "\x00" in "".join(values) for key, values in request.GET.lists()
            )
        ):
            return error_response(400, "bad_request", "The URL contains a NUL character.")
        return self.get_response(request)
