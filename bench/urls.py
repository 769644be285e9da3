from django.http import JsonResponse
from django.urls import include, path


def plain(request):
    """The baseline: a plain Django JSON view, no auth, no database."""
    return JsonResponse({"success": True, "hello": "world"})


urlpatterns = [
    path("bench/plain", plain),
    path("", include("bookings_project.urls")),
]

handler400 = "bookings_project.api.errors.handler400"
handler403 = "bookings_project.api.errors.handler403"
handler404 = "bookings_project.api.errors.handler404"
handler500 = "bookings_project.api.errors.handler500"
