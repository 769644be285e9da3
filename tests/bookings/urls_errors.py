"""The project's URLs plus views that fail on purpose, for the 500 envelope tests."""

from django.urls import path

from bookings.api_base import ApiView
from bookings_project.urls import urlpatterns as project_urlpatterns

LEAK = "secret internals: password=hunter2"


class BoomApi(ApiView):
    """An API view (no key needed) that fails unexpectedly."""

    def get(self, request):
        raise RuntimeError(LEAK)


def boom_view(request):
    """A plain Django view that fails unexpectedly: Django's handler500 answers."""
    raise RuntimeError(LEAK)


urlpatterns = [
    path("test/boom-api", BoomApi.as_view()),
    path("test/boom-django", boom_view),
    *project_urlpatterns,
]

handler400 = "bookings.errors.handler400"
handler403 = "bookings.errors.handler403"
handler404 = "bookings.errors.handler404"
handler500 = "bookings.errors.handler500"
