from django.db import connection
from django.http import JsonResponse
from django.urls import include, path

from bookings.access import request_admit


def plain(request):
    """The baseline: a plain Django JSON view, no auth, no database."""
    return JsonResponse({"success": True, "hello": "world"})


def round_trips(request):
    """The floor of a GET of one booking: the plain view plus the two round trips every such
    GET makes — the rate limit's script on Redis (for a key that names no row) and one
    prepared, indexed read of the booking (``?id=``) — and nothing else. What a GET costs
    beyond this is the framework's and ours."""
    request_admit("0" * 64)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, status FROM bookings_booking WHERE id = %s", [request.GET["id"]])
        row = cursor.fetchone()
    return JsonResponse({"success": True, "id": row[0], "status": row[1]})


urlpatterns = [
    path("bench/plain", plain),
    path("bench/round-trips", round_trips),
    path("", include("bookings_project.urls")),
]

handler400 = "bookings_project.api.errors.handler400"
handler403 = "bookings_project.api.errors.handler403"
handler404 = "bookings_project.api.errors.handler404"
handler500 = "bookings_project.api.errors.handler500"
