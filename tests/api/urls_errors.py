"""The project's URLs plus views that fail on purpose, for the 500 envelope tests."""

from django.urls import path

from bookings_project.api.views import ApiView
from bookings_project.urls import urlpatterns as project_urlpatterns

LEAK = "secret internals: password=hunter2"


class BoomApi(ApiView):
    """An API view (no key needed) that fails unexpectedly."""

    def get(self, request):
        raise RuntimeError(LEAK)


def database_down_error(kind: str):
    """The error Django raises when the database cannot be reached (``kind``): a connection
    refused or timed out (psycopg gives no SQLSTATE), a server shutting down or starting up,
    a connection lost, a connection already closed."""
    import psycopg
    import psycopg.errors
    from django.db import InterfaceError, OperationalError

    if kind == "closed":
        return InterfaceError("connection already closed")
    cause = {
        "refused": psycopg.OperationalError("connection failed: Connection refused"),
        "57P01": psycopg.errors.AdminShutdown("terminating connection"),
        "57P02": psycopg.errors.CrashShutdown("terminating connection"),
        "57P03": psycopg.errors.CannotConnectNow("the database system is starting up"),
        "08006": psycopg.errors.ConnectionFailure("connection failure"),
    }[kind]
    error = OperationalError(str(cause))
    error.__cause__ = cause
    return error


class DatabaseDownApi(ApiView):
    """An API view whose database went away."""

    def get(self, request, kind: str):
        raise database_down_error(kind)


def database_down_view(request, kind: str):
    """A plain Django view (under /v1 or not, as the admin) whose database went away."""
    raise database_down_error(kind)


class ContentionApi(ApiView):
    """An API view the database refused: a deadlock, a lock timeout, too many clients."""

    def get(self, request, sqlstate: str):
        import psycopg.errors
        from django.db import OperationalError

        cause = {
            "40P01": psycopg.errors.DeadlockDetected,
            "55P03": psycopg.errors.LockNotAvailable,
            "40001": psycopg.errors.SerializationFailure,
            "53300": psycopg.errors.TooManyConnections,
        }[sqlstate]("refused")
        raise OperationalError("refused") from cause


def boom_view(request):
    """A plain Django view that fails unexpectedly: Django's handler500 answers."""
    raise RuntimeError(LEAK)


urlpatterns = [
    path("test/boom-api", BoomApi.as_view()),
    path("test/boom-django", boom_view),
    path("test/contention/<str:sqlstate>", ContentionApi.as_view()),
    path("test/database-down-api/<str:kind>", DatabaseDownApi.as_view()),
    path("v1/test/database-down/<str:kind>", database_down_view),
    path("test/database-down/<str:kind>", database_down_view),
    *project_urlpatterns,
]

handler400 = "bookings_project.api.errors.handler400"
handler403 = "bookings_project.api.errors.handler403"
handler404 = "bookings_project.api.errors.handler404"
handler500 = "bookings_project.api.errors.handler500"
