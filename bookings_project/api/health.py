"""Liveness (no I/O) and readiness (database, cache, broker) probes."""

import functools
import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .errors import error_response

logger = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"  # as every API response declares it


def get_only(view):
    """GET and HEAD only. Anything else is a 405 in the error envelope (Django's own
    ``require_GET`` answers an empty HTML 405)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = error_response(
                405, "method_not_allowed", f'Method "{request.method}" not allowed.'
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


@csrf_exempt  # no cookies: a POST is 405, not the CSRF failure page
@get_only
def healthz(request):
    return JsonResponse({"success": True, "status": "ok"}, content_type=JSON)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("readyz", "1", timeout=5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return what was written")


def _check_broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # tasks run in-process: there is no broker to be down
    from bookings_project.celery import app

    # One immediate retry, not kombu's 2 s pause before it: a probe answers in milliseconds
    # when the broker refuses connections (the connect timeout bounds a vanished host).
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)


@csrf_exempt
@get_only
def readyz(request):
    checks = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}
    down = []
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            # One line, no traceback: probes come every few seconds for as long as it is down.
            logger.warning("readyz: %s is down (%s: %s)", name, type(exc).__name__, exc)
            down.append(name)
    if down:
        return error_response(
            503, "not_ready", f"Not ready: {', '.join(down)} unavailable.", {"down": down}
        )
    return JsonResponse(
        {"success": True, "status": "ready", "checks": list(checks)}, content_type=JSON
    )
