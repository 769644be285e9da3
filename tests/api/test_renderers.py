"""The JSON renderer writes times itself (orjson): the same bytes DRF's encoder wrote."""

import zoneinfo
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from rest_framework.renderers import JSONRenderer

from bookings_project.api.renderers import json_bytes

TIMES = [
    datetime(2026, 12, 7, 21, 23, 49, tzinfo=UTC),
    datetime(2026, 12, 7, 21, 23, 49, 123456, tzinfo=UTC),
    datetime(2026, 12, 7, 21, 23, 49, 1000, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=timezone(timedelta(0))),
    datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/London")),  # zero offset: "Z"
    datetime(2026, 7, 1, 9, 30, tzinfo=zoneinfo.ZoneInfo("Europe/London")),
    datetime(2026, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(2026, 7, 1, 9, 30, 0, 5),  # naive
    date(2026, 12, 7),
]


@pytest.mark.parametrize("value", TIMES, ids=str)
def test_a_time_is_written_as_drfs_encoder_writes_it(value):
    drf = JSONRenderer().render({"at": value})  # DRF's own renderer: its encoder's text
    assert json_bytes({"at": value}) == drf


def test_utc_times_end_in_z_with_microseconds_only_when_there_are_some():
    assert json_bytes(TIMES[:3]) == (
        b'["2026-12-07T21:23:49Z","2026-12-07T21:23:49.123456Z","2026-12-07T21:23:49.001000Z"]'
    )


def test_the_standard_library_fallback_writes_times_the_same_way():
    """An integer beyond 64 bits sends the whole document down DRF's path: its times must
    come out as orjson writes them, so a response does not change its times' format with its
    metadata."""
    times = {"start_time": TIMES[1], "end_time": TIMES[0]}
    fallback = json_bytes({**times, "big": 2**70})
    assert fallback == (
        b'{"start_time":"2026-12-07T21:23:49.123456Z","end_time":"2026-12-07T21:23:49Z",'
        b'"big":1180591620717411303424}'
    )
    assert json_bytes(times) == fallback.replace(b',"big":1180591620717411303424', b"")
