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
    clock[0] += 1.9
    assert outage.skip()  # the second failure doubled the pause: 2 s
    clock[0] += 0.2
    assert not outage.skip()
    clock[0] += 57.9  # a minute into the outage: the next one missed says so
    outage.missed()
    outage.succeeded()
    assert not outage.skip()
    outage.succeeded()  # healthy again: nothing more to say

    assert [r.getMessage() for r in caplog.records] == [
        "Thing unreachable (ConnectionError: refused): going on without it; "
        "trying again in 1.0s, then less often (at most every 10.0s)",
        "Thing still unreachable after 61s: 53 operations without it in the last 61s",
        "Thing reachable again after 61s (0 operations without it since the last line)",
    ]
    assert all(r.levelname == "WARNING" and not r.exc_info for r in caplog.records)


def test_the_pause_doubles_up_to_its_cap_and_starts_over_after_a_recovery(clock):
    outage = Outage(
        logging.getLogger("tests.outage"),
        "Thing",
        consequence="on without it",
        retry_seconds=1,
        max_retry_seconds=5,
    )

    def pause() -> float:
        outage.failed(TimeoutError("timed out"))
        started = clock[0]
        while outage.skip():
            clock[0] += 0.25
        return clock[0] - started

    assert [pause() for _ in range(5)] == [1, 2, 4, 5, 5]
    outage.succeeded()
    assert pause() == 1


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
