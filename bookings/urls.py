from rest_framework.routers import SimpleRouter

from . import viewsets

# No trailing slashes: /v1/bookings, /v1/bookings/{id}. A path the router does not know falls
# through to the project's /v1 catch-all (a 404 in the envelope).
router = SimpleRouter(trailing_slash=False)
router.register("bookings", viewsets.BookingViewSet, basename="booking")
router.register("event-types", viewsets.EventTypeViewSet, basename="event-type")
router.register("team/members", viewsets.TeamMemberViewSet, basename="member")

urlpatterns = router.urls
