def test_get_booking(api, team):
    from tests.factories import BookingFactory

    booking = BookingFactory(event_type__team=team)
    response = api.get(f"/v1/bookings/{booking.id}")
    assert response.status_code == 200, response.content
    assert response.json()["booking"]["id"] == booking.id
