"""The lifecycle walk's parts that know no case: the expectations' sources, the HTTP client,
the check counter, and the email ledger held against the SMTP sink. See lifecycle_walk.py."""

import os
import time
from collections import Counter, defaultdict

import requests
from icalendar import Calendar

from tests.smtp_sink import SmtpSink

# The contract's lifecycle table (API.md), as a cross-check of the code's.
CONTRACT = {
    "confirm": ({"PENDING_CONFIRMATION"}, "SCHEDULED", {"SCHEDULED", "RESCHEDULED"}),
    "complete": ({"SCHEDULED", "RESCHEDULED"}, "COMPLETED", {"COMPLETED"}),
    "no_show": ({"SCHEDULED", "RESCHEDULED"}, "NO_SHOW", {"NO_SHOW"}),
    "cancel": (
        {"DRAFT", "SCHEDULED", "RESCHEDULED", "PENDING_CONFIRMATION"},
        "CANCELLED",
        {"CANCELLED"},
    ),
    "reschedule": ({"SCHEDULED", "RESCHEDULED", "PENDING_CONFIRMATION"}, "CANCELLED", set()),
}
PREFIX = {
    "confirmation": "Confirmed",
    "awaiting_confirmation": "Awaiting confirmation",
    "cancellation": "Cancelled",
}


def load_table():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bookings_project.settings.local")
    import django

    django.setup()
    from bookings.transitions import ATTENDEE_EDITABLE, TRANSITIONS, rescheduled_status

    return TRANSITIONS, {str(s) for s in ATTENDEE_EDITABLE}, rescheduled_status


class Checks:
    def __init__(self):
        self.counts = defaultdict(lambda: [0, 0])
        self.failures: list[str] = []

    def __call__(self, group: str, ok: bool, what: str) -> bool:
        self.counts[group][0 if ok else 1] += 1
        if not ok:
            self.failures.append(f"{group}: {what}")
        return ok

    def equal(self, group: str, got, expected, what: str) -> bool:
        return self(group, got == expected, f"{what}: got {got!r}, expected {expected!r}")


class Api:
    def __init__(self, base_url: str, api_key: str):
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {api_key}"
        self.requests = self.waits = 0

    def __call__(self, method: str, path: str, body=None, headers=None, data=None):
        while True:
            self.requests += 1
            response = self.http.request(
                method,
                self.base + path,
                json=body if data is None else None,
                data=data,
                headers={"Content-Type": "application/json", **(headers or {})},
                timeout=30,
            )
            if response.status_code != 429:
                return response
            self.waits += 1
            time.sleep(int(response.headers.get("Retry-After", "1")))

    def booking(self, booking_id: str) -> dict:
        return self("GET", f"/v1/bookings/{booking_id}").json()["booking"]

    def history(self, booking_id: str) -> list:
        return self("GET", f"/v1/bookings/{booking_id}/history").json()["history"]


class Mail:
    """What the attendees should have received, checked against the sink step by step."""

    def __init__(self, sink: SmtpSink | None, check: Checks):
        self.sink, self.check = sink, check
        self.expected: Counter = Counter()
        self.patient = True  # stop waiting step by step once an email is missing

    def expect(self, to: str, kind: str) -> None:
        self.expected[(to, PREFIX[kind])] += 1
        if self.sink and self.patient:
            try:
                self.sink.wait_for(sum(self.expected.values()), timeout=15)
            except AssertionError as error:
                self.patient = self.check("emails", False, f"after {kind} to {to}: {error}")

    def report(self, settle: float) -> None:
        if not self.sink:
            return
        time.sleep(settle)  # late duplicates have their chance to arrive
        received = self.sink.messages
        got = Counter((to, m.subject.split(":")[0]) for m in received for to in m.rcpt_to)
        for pair in sorted(set(got) | set(self.expected)):
            self.check.equal("emails", got[pair], self.expected[pair], f"messages {pair}")
        events = defaultdict(list)
        for message in received:
            calendar = Calendar.from_ical(message.calendar())
            [event] = calendar.walk("VEVENT")
            cancel = message.subject.startswith("Cancelled")
            method = str(calendar["METHOD"])
            self.check.equal("emails", method, "CANCEL" if cancel else "REQUEST", "ics METHOD")
            for to in message.rcpt_to:
                events[to].append((str(event["UID"]), int(event["SEQUENCE"])))
        for to, seen in events.items():
            self.check.equal("emails", len({uid for uid, _ in seen}), 1, f"UIDs to {to}")
            sequences = [sequence for _, sequence in seen]
            self.check("emails", sequences == sorted(set(sequences)), f"SEQUENCE to {to}")
        print(f"\n{'emails by kind':<28}{'expected':>9}{'received':>9}")
        for prefix in PREFIX.values():
            expected = sum(n for (_, p), n in self.expected.items() if p == prefix)
            count = sum(1 for m in received if m.subject.startswith(prefix + ":"))
            print(f"{prefix + ':':<28}{expected:>9}{count:>9}")
