"""One error family, one exception handler, one envelope.

Every error the service returns — DRF's, Django's 404/500, our own — has the shape
``{"success": false, "error": {"code", "message", "details"}}``.
"""

import logging
import sys
from collections.abc import Mapping

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from bookings_project.outage import is_database_unreachable

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """Base of our own errors: a status, a stable code, a message and optional details."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "Bad request."

    def __init__(self, message: str | None = None, *, details: dict | None = None, headers=None):
        super().__init__(message or self.default_detail, self.default_code)
        self.details = details or {}
        self.headers = headers or {}


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = "Not found."


class ServiceBusy(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "The service is busy; retry shortly."


class DatabaseUnavailable(ServiceBusy):
    default_detail = "The database is unavailable; retry shortly."


class RateLimited(ApiError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"
    default_detail = "Too many requests."

    @classmethod
    def over(cls, state, now: float) -> "RateLimited":
        """The refusal of a key over its limit (``state``, a ``RateLimitState``), wherever it is
        answered: its message and when to retry."""
        return cls(
            f"Rate limit of {state.limit} requests a minute exceeded.",
            headers={"Retry-After": str(state.retry_after(now))},
        )


# Seconds a client should wait after 503 because the database cannot be reached. A restart or
# a failover takes seconds: retrying sooner only adds refused connections (and, when the host
# does not answer at all, each attempt holds a worker for DATABASE_CONNECT_TIMEOUT).
DATABASE_UNAVAILABLE_RETRY_AFTER = 5
# Seconds after 503 because the database is busy (a lock held too long): it clears quickly.
DATABASE_BUSY_RETRY_AFTER = 1


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


def suspicious_request_error(exc: SuspiciousOperation) -> ApiError:
    """What Django refuses as suspicious while a view reads the request (more query
    parameters than ``DATA_UPLOAD_MAX_NUMBER_FIELDS``, say) is the client's: 400, or 413 for
    a body too large. Django's own text names its settings; ours says what to change."""
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return ApiError("Too many query parameters or form fields.")
    return ApiError()


def is_unsendable_value(exc: BaseException | None) -> bool:
    """True for a value the database driver refused to send: psycopg raises ``DataError``
    without an SQLSTATE (the client's error, not the server's) for text holding NUL, which
    PostgreSQL cannot store. Only a client's input can carry one (nothing stored has it)."""
    if not isinstance(exc, DataError):
        return False
    cause = exc.__cause__
    return hasattr(cause, "sqlstate") and cause.sqlstate is None


def database_error(exc: OperationalError | InterfaceError) -> ServiceBusy:
    """What to answer when the database failed a request: 503 ``service_unavailable`` with
    ``Retry-After``, never a 500. Either it cannot be reached (the connection is then
    discarded at the end of the request and the next one connects afresh), or it is there but
    refused this once: a lock held too long (PostgreSQL's lock_timeout, SQLite's busy
    timeout), a deadlock or serialization failure it broke, too many clients."""
    if is_database_unreachable(exc):
        # One line per request, no trace: an outage would otherwise flood the log.
        logger.warning("Database unreachable: %s", " ".join(str(exc).split()))
        return DatabaseUnavailable(headers={"Retry-After": str(DATABASE_UNAVAILABLE_RETRY_AFTER)})
    logger.warning("Database busy: %s", exc, exc_info=True)
    return ServiceBusy(headers={"Retry-After": str(DATABASE_BUSY_RETRY_AFTER)})


# The apps' own error classes → HTTP status. An app registers its classes when it is ready
# (``register_error_statuses``): this module knows none of them. An error is answered with the
# status of the nearest registered class in its MRO, and its own ``code``, ``message``,
# ``details`` and ``retry_after`` (seconds, or None).
_REGISTERED_STATUSES: dict[type[Exception], int] = {}


def register_error_statuses(statuses: Mapping[type[Exception], int]) -> None:
    _REGISTERED_STATUSES.update(statuses)


def _registered_status(exc: Exception) -> int | None:
    return next(
        (_REGISTERED_STATUSES[cls] for cls in type(exc).__mro__ if cls in _REGISTERED_STATUSES),
        None,
    )


# DRF's own exceptions → our codes. Anything else a client can cause is mapped here too.
_DRF_CODES: dict[type[exceptions.APIException], tuple[str, str | None]] = {
    exceptions.ValidationError: ("validation_error", "The request is not valid."),
    exceptions.ParseError: ("validation_error", None),
    exceptions.NotAuthenticated: ("unauthorized", None),
    exceptions.AuthenticationFailed: ("unauthorized", None),
    exceptions.PermissionDenied: ("forbidden", None),
    exceptions.NotFound: ("not_found", "Not found."),
    exceptions.MethodNotAllowed: ("method_not_allowed", None),
    exceptions.NotAcceptable: ("not_acceptable", None),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", None),
    exceptions.Throttled: ("rate_limited", None),
}


def envelope(code: str, message: str, details: dict | None = None) -> dict:
    return {"success": False, "error": {"code": code, "message": message, "details": details or {}}}


def error_response(status_code: int, code: str, message: str, details: dict | None = None):
    """A plain Django response in the envelope, for errors raised outside DRF views."""
    return JsonResponse(
        envelope(code, message, details),
        status=status_code,
        content_type="application/json; charset=utf-8",
        json_dumps_params={"separators": (",", ":")},
    )


def api_error_response(error: ApiError):
    """One of our errors answered outside DRF's handler (by Django's handlers, a middleware):
    its status, code, message, details and headers (``Retry-After``), as the handler would."""
    response = error_response(
        error.status_code, error.default_code, str(error.detail), error.details
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


def _validation_details(detail) -> dict:
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value):
    if isinstance(value, dict):
        return {key: _messages(item) for key, item in value.items()}
    if isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            return [str(item) for item in value]
        return [_messages(item) for item in value]
    return [str(value)]


def exception_handler(exc, context):
    registered = _registered_status(exc)
    if registered is not None:
        retry_after = getattr(exc, "retry_after", None)
        set_rollback()
        return Response(
            envelope(exc.code, exc.message, exc.details),
            status=registered,
            headers={"Retry-After": str(retry_after)} if retry_after else None,
        )
    if isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError (the admin shows it too); the API answers 400.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, OperationalError | InterfaceError):
        exc = database_error(exc)
    elif isinstance(exc, SuspiciousOperation):
        exc = suspicious_request_error(exc)

    if not isinstance(exc, exceptions.APIException):
        # Unexpected: logged with its trace, answered without it.
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        set_rollback()
        return Response(
            envelope("internal_error", "Something went wrong on our side."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    headers = {}
    if isinstance(exc, ApiError):
        code, message, details = exc.default_code, str(exc.detail), exc.details
        headers.update(exc.headers)
    else:
        code, message = next(
            (value for cls, value in _DRF_CODES.items() if isinstance(exc, cls)),
            ("error", None),
        )
        details = {}
        if isinstance(exc, exceptions.ValidationError):
            details = _validation_details(exc.detail)
            message = "The request is not valid."
        elif isinstance(exc.detail, dict | list):
            details = _validation_details(exc.detail)
            message = message or "The request is not valid."
        else:
            message = message or str(exc.detail)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    set_rollback()
    return Response(envelope(code, message, details), status=exc.status_code, headers=headers)


# Django-level answers, for requests that never reach a DRF view: status → code, message.
DJANGO_ERRORS = {
    400: ("bad_request", "Bad request."),
    403: ("forbidden", "Forbidden."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    500: ("internal_error", "Something went wrong on our side."),
}


def django_error_response(status_code: int):
    code, message = DJANGO_ERRORS.get(status_code, ("error", "Failed."))
    return error_response(status_code, code, message)


def is_api_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def handler404(request, exception=None):
    return django_error_response(404)


# Outside the API (the admin), a database outage is a plain page: no trace, no JSON.
_UNAVAILABLE_PAGE = (
    "<!doctype html><title>503 Service Unavailable</title>"
    "<h1>Service unavailable</h1><p>{message} Try again in a few seconds.</p>"
)


def handler500(request):
    """Django's answer to an exception no view handled (raised in a middleware, a plain
    Django view, the admin; called inside the ``except``, so the exception is at hand). A
    database that failed is a 503 with ``Retry-After`` (the envelope under /v1, a plain page
    elsewhere), as in the API's own handler. A value the driver could not send (NUL in a
    form's choice of a row, in the admin) is the client's: 400. Anything else a 500 without a
    trace."""
    exc = sys.exc_info()[1]
    if is_unsendable_value(exc):
        return error_response(
            400, "bad_request", "The request holds a value that cannot be stored."
        )
    if not isinstance(exc, OperationalError | InterfaceError):
        return django_error_response(500)
    busy = database_error(exc)
    if is_api_path(request.path_info):
        return api_error_response(busy)
    response = HttpResponse(
        _UNAVAILABLE_PAGE.format(message=busy.detail),
        status=busy.status_code,
        content_type="text/html; charset=utf-8",
    )
    for name, value in busy.headers.items():
        response[name] = value
    return response


def handler400(request, exception=None):
    if isinstance(exception, SuspiciousOperation):
        return api_error_response(suspicious_request_error(exception))
    return django_error_response(400)


def handler403(request, exception=None):
    return django_error_response(403)


@csrf_exempt  # an API path: no cookies, so no CSRF check and no HTML 403 page
def api_not_found(request, *args, **kwargs):
    """Any unknown path under /v1, any method: the envelope even when DEBUG would show a
    debug page."""
    return handler404(request)


def csrf_failure(request, reason=""):
    """A CSRF refusal: the envelope under /v1, Django's own page for the admin."""
    if is_api_path(request.path_info):
        return django_error_response(403)
    return django_csrf_failure(request, reason=reason)
