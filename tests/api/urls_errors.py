"""The project's URLs plus views that fail on purpose, for the 500 envelope tests."""

from django.urls import path

from bookings_project.api.views import ApiView
from bookings_project.urls import urlpatterns as project_urlpatterns

LEAK = "secret internals: password=hunter2"


class BoomApi(ApiView):
    """An API view (no key needed) that fails unexpectedly."""

    def get(self, request):
        raise RuntimeError(LEAK)


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
            "57P01": psycopg.errors.AdminShutdown,
        }[sqlstate]("refused")
        raise OperationalError("refused") from cause


def boom_view(request):
    """A plain Django view that fails unexpectedly: Django's handler500 answers."""
    raise RuntimeError(LEAK)


urlpatterns = [
    path("test/boom-api", BoomApi.as_view()),
    path("test/boom-django", boom_view),
    path("test/contention/<str:sqlstate>", ContentionApi.as_view()),
    *project_urlpatterns,
]

handler400 = "bookings_project.api.errors.handler400"
handler403 = "bookings_project.api.errors.handler403"
handler404 = "bookings_project.api.errors.handler404"
handler500 = "bookings_project.api.errors.handler500"
