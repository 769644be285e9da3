"""The soak's traffic: threads sending a mix of API requests over HTTP, every outcome counted.

Each thread draws an operation by weight, sends it to one of the base URLs (round robin) and
records ``"<operation> <status> [<error code>]"``. Every operation has the outcomes it may
legitimately have (a create may find its slot taken: 409 ``slot_unavailable``; a confirm of a
booking that is not pending: 409 ``invalid_transition``; …); anything else — a 5xx above all,
a connection error, a replay that is not the original's bytes — is counted as unexpected.
The threads act on each other's bookings, so lifecycle actions race for real.
"""

import itertools
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

REPLAY_MARKER = b',"idempotent_replay":true'

# operation -> (weight, the outcomes it may have)
OPERATIONS: dict[str, tuple[int, frozenset[str]]] = {
    "create": (14, frozenset({"201", "409 slot_unavailable"})),
    "create_keyed": (10, frozenset({"201", "409 slot_unavailable"})),
    "replay": (6, frozenset({"200"})),
    "get": (14, frozenset({"200"})),
    "list": (8, frozenset({"200"})),
    "history": (4, frozenset({"200"})),
    "confirm": (6, frozenset({"200", "409 invalid_transition"})),
    "cancel": (5, frozenset({"200"})),
    "patch_email": (6, frozenset({"200", "409 invalid_transition"})),
    "reschedule": (6, frozenset({"201", "409 invalid_transition", "409 slot_unavailable"})),
    # The expected refusals.
    "complete_early": (3, frozenset({"409 booking_not_started", "409 invalid_transition"})),
    "create_invalid": (2, frozenset({"400 validation_error"})),
    "get_unknown": (2, frozenset({"404 not_found"})),
    "key_reused": (2, frozenset({"422 idempotency_key_reused"})),
    "no_key": (1, frozenset({"401 unauthorized"})),
}


@dataclass
class Fixture:
    """What the traffic needs to know of the seeded data."""

    secret: str
    event_type_ids: list[str]
    region: datetime  # the first slot the traffic books (UTC)
    days: int  # how many days of 15-minute slots it spreads over


@dataclass
class Counts:
    outcomes: Counter = field(default_factory=Counter)  # "create 201" -> n
    unexpected: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, operation: str, outcome: str, expected: frozenset[str]) -> None:
        with self.lock:
            self.outcomes[f"{operation} {outcome}"] += 1
            if outcome not in expected:
                self.unexpected[f"{operation} {outcome}"] += 1

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    @property
    def server_errors(self) -> int:
        return sum(n for key, n in self.outcomes.items() if key.split(" ")[1].startswith("5"))


def outcome_of(response: requests.Response) -> str:
    if 400 <= response.status_code < 500:
        try:
            return f"{response.status_code} {response.json()['error']['code']}"
        except (ValueError, KeyError, TypeError):
            return f"{response.status_code} not-an-envelope"
    return str(response.status_code)


class Traffic:
    def __init__(self, base_urls: list[str], fixture: Fixture, counts: Counts):
        self.urls = itertools.cycle(base_urls)
        self.fixture = fixture
        self.counts = counts
        self.bookings: list[str] = []  # every booking id a 201 returned
        self.keyed: list[tuple[str, dict, bytes]] = []  # (key, body, first answer)
        self.lock = threading.Lock()
        names = list(OPERATIONS)
        self.names, self.weights = names, [OPERATIONS[name][0] for name in names]

    # --- helpers ---------------------------------------------------------------------------

    def slot(self, rng: random.Random) -> str:
        moment = self.fixture.region + timedelta(minutes=15 * rng.randrange(self.fixture.days * 96))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def create_body(self, rng: random.Random) -> dict:
        return {
            "event_type_id": rng.choice(self.fixture.event_type_ids),
            "requested_time": self.slot(rng),
            "attendee": {"name": "Soak", "email": f"a{rng.randrange(10**6)}@example.com"},
        }

    def some_booking(self, rng: random.Random) -> str | None:
        with self.lock:
            return rng.choice(self.bookings) if self.bookings else None

    def remember(self, response: requests.Response) -> None:
        if response.status_code == 201:
            with self.lock:
                self.bookings.append(response.json()["booking"]["id"])

    # --- the loop --------------------------------------------------------------------------

    def run(self, *, seconds: float, threads: int, seed: int | None = None) -> Counts:
        deadline = time.monotonic() + seconds
        barrier = threading.Barrier(threads)
        base = random.Random(seed)
        seeds = [base.randrange(2**32) for _ in range(threads)]

        def worker(index: int) -> None:
            rng = random.Random(seeds[index])
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.fixture.secret}"
            barrier.wait(timeout=60)
            while time.monotonic() < deadline:
                operation = rng.choices(self.names, self.weights)[0]
                try:
                    outcome = self.send(operation, session, next(self.urls), rng)
                except requests.RequestException as exc:
                    outcome = f"error {type(exc).__name__}"
                if outcome is not None:
                    self.counts.add(operation, outcome, OPERATIONS[operation][1])

        started = time.monotonic()
        workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        self.counts.seconds = time.monotonic() - started
        return self.counts

    def send(self, operation: str, session: requests.Session, url: str, rng) -> str | None:
        """Send one request of the operation; its outcome (None: nothing to act on yet)."""
        timeout = 60
        if operation in {"create", "create_invalid"}:
            body = self.create_body(rng)
            if operation == "create_invalid":
                body["requested_time"] = "2030-01-01T10:00:00"  # naive: 400
            response = session.post(f"{url}/v1/bookings", json=body, timeout=timeout)
            self.remember(response)
            return outcome_of(response)
        if operation == "create_keyed":
            key, body = f"soak-{secrets.token_hex(8)}", self.create_body(rng)
            response = session.post(
                f"{url}/v1/bookings", json=body, headers={"Idempotency-Key": key}, timeout=timeout
            )
            self.remember(response)
            if response.status_code == 201:
                with self.lock:
                    self.keyed.append((key, body, response.content))
            return outcome_of(response)
        if operation in {"replay", "key_reused"}:
            with self.lock:
                if not self.keyed:
                    return None
                key, body, first = rng.choice(self.keyed)
            if operation == "key_reused":
                body = {**body, "metadata": {"other": "body"}}
            response = session.post(
                f"{url}/v1/bookings", json=body, headers={"Idempotency-Key": key}, timeout=timeout
            )
            outcome = outcome_of(response)
            # A replay is the first answer's bytes, with the marker before the final "}".
            replayed = first[:-1] + REPLAY_MARKER + first[-1:]
            if (
                operation == "replay"
                and response.status_code == 200
                and response.content != replayed
            ):
                outcome = "200 replay-differs"
            return outcome
        if operation == "list":
            response = session.get(f"{url}/v1/bookings?limit=20", timeout=timeout)
            return outcome_of(response)
        if operation == "get_unknown":
            response = session.get(f"{url}/v1/bookings/bkg_{'0' * 26}", timeout=timeout)
            return outcome_of(response)
        if operation == "no_key":
            response = requests.get(
                f"{url}/v1/bookings", headers={"Authorization": "Bearer sk_live_nope"}, timeout=60
            )
            return outcome_of(response)
        booking = self.some_booking(rng)
        if booking is None:
            return None
        path = f"{url}/v1/bookings/{booking}"
        if operation == "get":
            response = session.get(path, timeout=timeout)
        elif operation == "history":
            response = session.get(f"{path}/history", timeout=timeout)
        elif operation == "confirm":
            response = session.post(f"{path}/confirm", json={}, timeout=timeout)
        elif operation == "cancel":
            response = session.post(f"{path}/cancel", json={"reason": "soak"}, timeout=timeout)
        elif operation == "complete_early":
            response = session.post(f"{path}/complete", json={}, timeout=timeout)
        elif operation == "patch_email":
            email = f"p{rng.randrange(10**6)}@example.com"
            response = session.patch(path, json={"attendee": {"email": email}}, timeout=timeout)
        elif operation == "reschedule":
            body = {"requested_time": self.slot(rng)}
            headers = (
                {"Idempotency-Key": f"soak-r-{secrets.token_hex(8)}"} if rng.random() < 0.5 else {}
            )
            response = session.post(
                f"{path}/reschedule", json=body, headers=headers, timeout=timeout
            )
            self.remember(response)
        else:
            raise ValueError(operation)
        return outcome_of(response)
