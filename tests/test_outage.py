"""An outage of a dependency, as one process sees it: tried again once a second, logged in a
few lines (never a traceback per request)."""

import logging

import pytest

from bookings_project import outage as module
from bookings_project.outage import Outage


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    return now


def test_an_outage_is_left_alone_between_tries_and_logged_in_three_lines(clock, caplog):
    outage = Outage(logging.getLogger("tests.outage"), "Thing", consequence="going on without it")
    caplog.set_level(logging.INFO, logger="tests.outage")
    assert not outage.skip()  # healthy: always tried

    outage.failed(ConnectionError("refused"))
    outage.missed()
    for _ in range(50):  # the requests of the next second: not tried, just counted
        clock[0] += 0.01
        assert outage.skip()
        outage.missed()
    clock[0] += 0.6
    assert not outage.skip()  # a second after the failure: tried again
    outage.failed(ConnectionError("refused"))
    outage.missed()
    clock[0] += 60  # a minute into the outage: the next one missed says so
    outage.missed()
    outage.succeeded()
    assert not outage.skip()
    outage.succeeded()  # healthy again: nothing more to say

    assert [r.getMessage() for r in caplog.records] == [
        "Thing unreachable (ConnectionError: refused): going on without it; "
        "trying again every 1.0s",
        "Thing still unreachable after 61s: 53 operations without it in the last 61s",
        "Thing reachable again after 61s (0 operations without it since the last line)",
    ]
    assert all(r.levelname == "WARNING" and not r.exc_info for r in caplog.records)


def test_a_new_outage_is_announced_again(clock, caplog):
    outage = Outage(logging.getLogger("tests.outage"), "Thing", consequence="on without it")
    for _ in range(2):
        outage.failed(TimeoutError("timed out"))
        clock[0] += 2
        outage.succeeded()

    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0] for m in messages] == [
        "Thing unreachable",
        "Thing reachable again after 2s",
    ] * 2
