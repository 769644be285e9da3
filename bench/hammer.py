#!/usr/bin/env python
"""A black-box check of "no double booking": hammer a running server, then count.

    python bench/hammer.py http://127.0.0.1:8000 sk_live_…

Only HTTP: it reads the event types, fires concurrent creates at a handful of slots (the same
Idempotency-Key from many threads, one SOLO slot from many threads with different keys, one
ROUND_ROBIN slot from many threads, then 20 rounds of 10 concurrent creates of one ROUND_ROBIN
slot each), then lists the team's bookings through the API and checks that no host has two
overlapping active bookings, that each key made one booking, that every round booked every
free host, and that no response was a 5xx.
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta

BASE, KEY = sys.argv[1].rstrip("/"), sys.argv[2]
THREADS = 20
ROUNDS, ROUND_THREADS = 20, 10


def call(method: str, path: str, body=None, headers=None):
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {KEY}",
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:  # not JSON: itself a failure, counted by status
            return error.code, {"raw": raw[:200].decode(errors="replace")}


def together(count: int, function) -> list:
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        barrier.wait()
        results[i] = function(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main() -> int:
    _, body = call("GET", "/v1/event-types")
    types = {event_type["slug"]: event_type for event_type in body["event_types"]}
    solo, round_robin = types["deep-dive"], types["intro-call"]
    # A random day far ahead, so repeated runs do not collide with each other.
    day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(
        days=300 + int(time.time()) % 600
    )
    stamp = str(time.time_ns())

    def create(event_type, start, key=None):
        headers = {"Idempotency-Key": key} if key else {}
        payload = {
            "event_type_id": event_type["id"],
            "requested_time": start.isoformat(),
            "attendee": {"name": "Hammer", "email": "hammer@example.com"},
        }
        return call("POST", "/v1/bookings", payload, headers)[0]

    one_key = Counter(together(THREADS, lambda i: create(round_robin, day, f"hammer-{stamp}")))
    one_solo = Counter(
        together(THREADS, lambda i: create(solo, day + timedelta(hours=2), f"hammer-{stamp}-{i}"))
    )
    one_rr = Counter(together(THREADS, lambda i: create(round_robin, day + timedelta(hours=4))))
    rounds_day = day + timedelta(days=1)
    rounds_outcomes: Counter = Counter()
    short_rounds = []
    for number in range(ROUNDS):
        start = rounds_day + timedelta(minutes=30 * number)
        outcome = Counter(together(ROUND_THREADS, lambda i, s=start: create(round_robin, s)))
        rounds_outcomes.update(outcome)
        if outcome[201] != len(round_robin["host_ids"]):
            short_rounds.append((number, dict(outcome)))
    print("one key, 20 threads:         ", dict(one_key))
    print("one SOLO slot, 20 threads:   ", dict(one_solo))
    print("one ROUND_ROBIN slot, 20 threads:", dict(one_rr))
    print(f"{ROUNDS} rounds of {ROUND_THREADS} creates of one slot:", dict(rounds_outcomes))
    if short_rounds:
        print("rounds that left a free host unbooked:", short_rounds)
    server_errors = sum(
        count
        for outcomes in (one_key, one_solo, one_rr, rounds_outcomes)
        for status, count in outcomes.items()
        if status >= 500
    )

    bookings, cursor = [], None
    while True:
        query = f"?start_date={day.date().isoformat()}&end_date={day.date().isoformat()}&limit=100"
        _, page = call("GET", "/v1/bookings" + query + (f"&cursor={cursor}" if cursor else ""))
        bookings += page["bookings"]
        cursor = page["pagination"]["next_cursor"]
        if not cursor:
            break
    active = [
        b
        for b in bookings
        if b["status"] in {"DRAFT", "SCHEDULED", "PENDING_CONFIRMATION", "RESCHEDULED"}
    ]
    overlaps = 0
    for a in active:
        for b in active:
            if (
                a["id"] < b["id"]
                and a["assigned_to_id"] == b["assigned_to_id"]
                and (a["start_time"] < b["end_time"] and b["start_time"] < a["end_time"])
            ):
                overlaps += 1
    hosts = len(round_robin["host_ids"])
    ok = (
        one_key[201] == 1
        and one_solo[201] == 1
        and one_rr[201] == hosts
        and len(bookings) == 2 + hosts
        and overlaps == 0
        and not short_rounds
        and server_errors == 0
    )
    print(f"bookings that day: {len(bookings)} (expected {2 + hosts}); overlaps: {overlaps}")
    print(f"5xx responses: {server_errors}")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
