from django.urls import path

from . import apis

urlpatterns = [
    path("bookings", apis.BookingListApi.as_view(), name="booking-list"),
    path("bookings/<str:booking_id>", apis.BookingDetailApi.as_view(), name="booking-detail"),
    path("event-types", apis.EventTypeListApi.as_view(), name="event-type-list"),
    path(
        "event-types/<str:event_type_id>",
        apis.EventTypeDetailApi.as_view(),
        name="event-type-detail",
    ),
    path("team/members", apis.MemberListApi.as_view(), name="member-list"),
    path("team/members/<str:member_id>", apis.MemberDetailApi.as_view(), name="member-detail"),
]
