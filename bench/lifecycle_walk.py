#!/usr/bin/env python
"""A black-box walk of the whole lifecycle table against a running server, over HTTP only.

    .venv/bin/python bench/lifecycle_walk.py --base-url http://127.0.0.1:8000 --api-key sk_…
    .venv/bin/python bench/lifecycle_walk.py --seed-json seed.json      # seed_demo --json output
    .venv/bin/python bench/lifecycle_walk.py --seed                     # runs seed_demo --json
    ... --smtp-sink-port 2525    # also receive the emails: start the server with
                                 # EMAIL_URL=smtp://127.0.0.1:2525 (and its worker, if any)

The expectations come from the code's own table, ``bookings.transitions`` (so run it from
the repository with its .venv python); the walk checks the server against it and against the
contract's lifecycle table. It uses the demo data's event types (intro-call, deep-dive which
requires confirmation, office-hours), puts every booking in its own two-hour slot on a random
day at least two hours ahead, and for every action (confirm, complete, no-show, cancel,
reschedule, and PATCH of the attendee's email) from every status a client can reach
(SCHEDULED, PENDING_CONFIRMATION, RESCHEDULED, CANCELLED; DRAFT lasts only inside the create
request and COMPLETED / NO_SHOW need a booking that has started) it creates a booking, acts,
and checks the status code, the error code and details, the booking, its history and, on
success, that a repeat is 200 unchanged (or 409 for a reschedule) with no new history. Then
reschedules with and without ``Idempotency-Key`` (replay bytes, 422 on another body), PATCH
edge cases (a field that is not updatable, the same address, a case-only change).

With ``--smtp-sink-port`` it runs an SMTP server (tests/smtp_sink.py), waits after each step
for the emails it expects (so none is superseded by the next step), and at the end compares
the messages per kind (Subject prefix) and per recipient, the .ics METHOD, and that each
recipient's calendar events keep one UID with a growing SEQUENCE.

Prints a table of checks passed / failed per group (and the email counts); exits 1 on any
failure. Each run adds about 100 bookings; over the default rate limit (1000 a minute) it
waits as ``Retry-After`` says.
"""

import argparse
import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lifecycle_support import CONTRACT, Api, Checks, Mail, load_table  # noqa: E402
from tests.smtp_sink import SmtpSink  # noqa: E402


class Walk:
    def __init__(self, api: Api, check: Checks, mail: Mail, table, editable, rescheduled_status):
        self.api, self.check, self.mail = api, check, mail
        self.table, self.editable, self.rescheduled_status = table, editable, rescheduled_status
        self.types = {e["slug"]: e for e in api("GET", "/v1/event-types").json()["event_types"]}
        self.run = f"{random.randrange(16**6):06x}"
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.next_slot = hour + timedelta(days=random.randrange(30, 1500), hours=3)
        self.people = 0

    def slot(self) -> str:
        self.next_slot += timedelta(hours=2)
        return self.next_slot.isoformat().replace("+00:00", "Z")

    def kind(self, status: str) -> str:
        return "awaiting_confirmation" if status == "PENDING_CONFIRMATION" else "confirmation"

    def create(self, slug: str) -> dict:
        self.people += 1
        email = f"walk-{self.run}-{self.people}@example.com"
        for _ in range(5):  # a slot taken by an earlier run: the next one
            body = {
                "event_type_id": self.types[slug]["id"],
                "requested_time": self.slot(),
                "attendee": {"name": "Walker", "email": email},
            }
            response = self.api("POST", "/v1/bookings", body)
            if response.status_code != 409:
                break
        booking = response.json().get("booking", {})
        expected = "PENDING_CONFIRMATION" if slug == "deep-dive" else "SCHEDULED"
        if self.check.equal(f"create {slug}", booking.get("status"), expected, response.text):
            self.mail.expect(email, self.kind(expected))
        return booking

    def email_kind(self, action: str, status: str) -> str | None:
        """The email an action that moved a booking to ``status`` sends (the table's)."""
        email = self.table[action].email if action != "update" else "confirmation"
        return email and (self.kind(status) if email == "confirmation" else str(email))

    def act(self, booking: dict, action: str, headers=None, **extra):
        """POST the action (PATCH the email for "update"); the response."""
        path = f"/v1/bookings/{booking['id']}"
        if action == "update":
            email = extra.get("email") or booking["attendee"]["email"].replace("@", "-new@")
            return self.api("PATCH", path, {"attendee": {"email": email}})
        body = dict(extra)
        if action == "cancel":
            body = {"cancelled_by": "host", "reason": "walk", **extra}
        if action == "reschedule":
            body = {"requested_time": self.slot(), **extra}
        return self.api("POST", f"{path}/{self.table[action].path}", body, headers)

    def recipes(self):
        """(label, status, make) for each status a client can bring a booking to."""

        def then(slug: str, action: str, original: bool = False):
            def make():
                booking = self.create(slug)
                new = self.act(booking, action).json().get("booking", {})
                self.mail.expect(new["attendee"]["email"], self.email_kind(action, new["status"]))
                return self.api.booking(booking["id"]) if original else new

            return make

        return [
            ("intro-call", "SCHEDULED", lambda: self.create("intro-call")),
            ("deep-dive, confirmed", "SCHEDULED", then("deep-dive", "confirm")),
            ("deep-dive", "PENDING_CONFIRMATION", lambda: self.create("deep-dive")),
            ("deep-dive, rescheduled", "PENDING_CONFIRMATION", then("deep-dive", "reschedule")),
            ("intro-call, rescheduled", "RESCHEDULED", then("intro-call", "reschedule")),
            ("office-hours, cancelled", "CANCELLED", then("office-hours", "cancel")),
            ("intro-call, rescheduled away", "CANCELLED", then("intro-call", "reschedule", True)),
        ]

    def cell(self, action: str, label: str, status: str, make) -> str:
        """One action from one status: its answer, the booking, the history, a repeat."""
        group = f"{action} from {status} ({label})"
        booking = make()
        if not self.check.equal(group, booking.get("status"), status, "the setup's status"):
            return "setup failed"
        before, history = self.api.booking(booking["id"]), self.api.history(booking["id"])
        if action == "update":
            allowed, unchanged, needs_start = self.editable, set(), False
        else:
            transition = self.table[action]
            allowed, unchanged = transition.allowed_from, transition.unchanged_on
            needs_start = transition.requires_started
        if status in unchanged:
            outcome, code = "200 unchanged", 200
        elif status not in allowed:
            outcome, code = "409 invalid_transition", 409
        elif needs_start:  # every booking of the walk starts in the future
            outcome, code = "409 booking_not_started", 409
        else:
            outcome, code = "moved", 201 if action == "reschedule" else 200
        response = self.act(before, action)
        body = response.json()
        self.check.equal(group, response.status_code, code, f"status code ({response.text})")
        if outcome == "moved" and response.status_code == code:
            self.moved(group, action, before, history, body["booking"])
            return f"{code} {body['booking']['status']}"
        if code == 409:
            error = body.get("error", {})
            self.check.equal(group, error.get("code"), outcome[4:], "error code")
            details = error.get("details", {})
            if outcome.endswith("invalid_transition"):
                self.check.equal(group, details.get("status"), status, "details.status")
                self.check.equal(group, details.get("allowed_from"), sorted(allowed), "allowed")
            else:
                self.check.equal(group, details.get("start_time"), before["start_time"], "start")
        else:
            self.check.equal(group, body.get("booking"), before, "the answer")
        self.unchanged(group, before, history)
        return outcome

    def unchanged(self, group: str, before: dict, history: list) -> None:
        self.check.equal(group, self.api.booking(before["id"]), before, "the booking afterwards")
        self.check.equal(group, self.api.history(before["id"]), history, "the history afterwards")

    def moved(self, group: str, action: str, before: dict, history: list, answer: dict) -> None:
        check, status, booking_id = self.check, before["status"], before["id"]
        after, entries = self.api.booking(booking_id), self.api.history(booking_id)
        check.equal(group, len(entries), len(history) + 1, "one new history entry")
        entry = entries[-1]
        check.equal(group, entry["from_status"], status, "history from_status")
        check.equal(group, entry["actor"]["type"], "api_key", "history actor")
        check(group, entry["at"].endswith("Z"), f"history time in UTC: {entry['at']}")
        if action == "update":
            old, new = before["attendee"]["email"], answer["attendee"]["email"]
            check.equal(group, entry["action"], "attendee_updated", "history action")
            check.equal(group, entry["changes"], {"attendee.email": [old, new]}, "changes")
            check.equal(group, answer, after, "the answer is the booking")
            self.mail.expect(new, self.email_kind(action, status))
            repeat = self.act(after, "update", email=new)
            check.equal(group, repeat.status_code, 200, "the same address again")
            self.unchanged(group, after, entries)
            return
        transition = self.table[action]
        check.equal(group, entry["action"], transition.history_action, "history action")
        check.equal(group, entry["changes"].get("status"), [status, transition.to], "changes")
        check.equal(group, after["status"], transition.to, "the booking's new status")
        if action == "reschedule":
            new = answer
            check.equal(group, new["status"], self.rescheduled_status(status), "the new status")
            check.equal(group, new["rescheduled_from_id"], booking_id, "rescheduled_from_id")
            check.equal(group, after["rescheduled_to_id"], new["id"], "rescheduled_to_id")
            check.equal(group, after["cancellation"]["cancelled_by"], "api", "cancelled_by")
            new_entries = self.api.history(new["id"])
            check.equal(group, [e["action"] for e in new_entries], ["rescheduled"], "new history")
            moved_from = new_entries[0]["changes"].get("rescheduled_from_id")
            check.equal(group, moved_from, [None, booking_id], "new history's changes")
            self.mail.expect(new["attendee"]["email"], self.email_kind(action, new["status"]))
            repeat = self.act(after, "reschedule")
            check.equal(group, repeat.status_code, 409, "a reschedule of the cancelled original")
            self.unchanged(group, after, entries)
            return
        check.equal(group, answer, after, "the answer is the booking")
        kind = self.email_kind(action, after["status"])
        if kind:
            self.mail.expect(after["attendee"]["email"], kind)
        if action == "cancel":
            check.equal(group, after["cancellation"]["cancelled_by"], "host", "cancelled_by")
            check.equal(group, after["cancellation"]["reason"], "walk", "reason")
        # A repeat: 200, nothing changed (a second cancel's details do not replace the first's).
        repeat = self.act(
            after, action, **({"cancelled_by": "attendee"} if action == "cancel" else {})
        )
        check.equal(group, repeat.status_code, 200, "a repeat")
        check.equal(group, repeat.json().get("booking"), after, "a repeat changes nothing")
        self.unchanged(group, after, entries)

    def idempotency(self) -> None:
        group, check = "reschedule with and without Idempotency-Key", self.check
        original = self.create("intro-call")
        path, key = f"/v1/bookings/{original['id']}/reschedule", f"walk-{self.run}-reschedule"
        body = {"requested_time": self.slot(), "reason": "walk"}
        first = self.api("POST", path, body, {"Idempotency-Key": key})
        if not check.equal(group, first.status_code, 201, f"first call ({first.text})"):
            return
        new = first.json()["booking"]
        check.equal(group, first.headers.get("Location"), f"/v1/bookings/{new['id']}", "Location")
        self.mail.expect(new["attendee"]["email"], self.email_kind("reschedule", new["status"]))
        cut = first.content.rindex(b"}")
        replayed = first.content[:cut] + b',"idempotent_replay":true' + first.content[cut:]
        before = [self.api.booking(original["id"]), self.api.history(original["id"])]
        before += [self.api.history(new["id"])]

        def replay(what: str) -> None:
            # The same body, keys reordered and spaced: the same request.
            raw = json.dumps(dict(reversed(body.items())), indent=2)
            again = self.api("POST", path, data=raw, headers={"Idempotency-Key": key})
            check.equal(group, again.status_code, 200, f"{what}: replay status")
            check.equal(group, again.headers.get("Idempotent-Replayed"), "true", f"{what}: header")
            check.equal(group, again.content, replayed, f"{what}: the first body's bytes")

        replay("at once")
        after = [self.api.booking(original["id"]), self.api.history(original["id"])]
        check.equal(group, [*after, self.api.history(new["id"])], before, "nothing new")
        other = self.api("POST", path, {"requested_time": self.slot()}, {"Idempotency-Key": key})
        check.equal(group, other.status_code, 422, "the key with another body")
        check.equal(group, other.json()["error"]["code"], "idempotency_key_reused", "its code")
        plain = self.api("POST", path, {"requested_time": self.slot()})
        check.equal(group, plain.status_code, 409, "without a key: the original is cancelled")
        check.equal(group, plain.json()["error"]["code"], "invalid_transition", "its code")
        # A refused call does not keep its key: the client may use it again.
        second_key = f"{key}-2"
        refused = self.api(
            "POST", path, {"requested_time": self.slot()}, {"Idempotency-Key": second_key}
        )
        check.equal(group, refused.status_code, 409, "another key on the cancelled original")
        reused = self.api(
            "POST",
            f"/v1/bookings/{new['id']}/reschedule",
            {"requested_time": self.slot()},
            {"Idempotency-Key": second_key},
        )
        check.equal(group, reused.status_code, 201, "that key, released, on the new booking")
        if reused.status_code == 201:
            newer = reused.json()["booking"]
            self.mail.expect(
                newer["attendee"]["email"], self.email_kind("reschedule", newer["status"])
            )
        # The first key still replays its first answer, though that booking has moved on since.
        replay("after the booking moved on")
        check.equal(group, self.api.history(original["id"]), before[1], "original's history")

    def patch_edges(self) -> None:
        group, check = "PATCH edge cases", self.check
        booking = self.create("office-hours")
        path, email = f"/v1/bookings/{booking['id']}", booking["attendee"]["email"]
        before, history = self.api.booking(booking["id"]), self.api.history(booking["id"])
        refused = self.api("PATCH", path, {"status": "CANCELLED", "attendee": {"name": "X"}})
        check.equal(group, refused.status_code, 400, "a field that is not updatable")
        error = refused.json()["error"]
        check.equal(
            group,
            (error["code"], error["details"].get("fields")),
            ("field_not_updatable", ["status"]),
            "error",
        )
        self.unchanged(group, before, history)
        same = self.api("PATCH", path, {"attendee": {"email": email}})
        check.equal(group, same.status_code, 200, "the same address")
        self.unchanged(group, before, history)
        upper = email.upper()
        case = self.api("PATCH", path, {"attendee": {"email": upper, "name": "Walker Two"}})
        check.equal(group, case.status_code, 200, "a case-only change (and a new name)")
        check.equal(group, case.json()["booking"]["attendee"]["email"], upper, "stored as sent")
        entries = self.api.history(booking["id"])
        check.equal(group, len(entries), len(history) + 1, "one history entry")
        changes = {"attendee.email": [email, upper], "attendee.name": ["Walker", "Walker Two"]}
        check.equal(group, entries[-1]["changes"], changes, "its changes")
        # No email expected for it: the report at the end finds one if it was sent.


def guarded(check: Checks, group: str, step, *args):
    """Run one step; an answer it could not read (a 5xx page, a missing field) fails only it."""
    try:
        return step(*args)
    except Exception as error:
        check(group, False, f"crashed: {type(error).__name__}: {error}")
        return "crashed"


def seed_key(args) -> str:
    if args.api_key:
        return args.api_key
    if args.seed_json:
        text = Path(args.seed_json).read_text()
    else:
        command = [sys.executable, "manage.py", "seed_demo", "--json"]
        text = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(text)["teams"][args.team]["api_key"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--api-key", help="a full-scope key of a demo team")
    keys.add_argument("--seed-json", help="a file holding `manage.py seed_demo --json` output")
    keys.add_argument("--seed", action="store_true", help="run seed_demo --json (same env)")
    parser.add_argument("--team", type=int, default=0, help="which seed team (default 0)")
    parser.add_argument("--smtp-sink-port", type=int, help="run an SMTP sink on this port")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait for strays")
    args = parser.parse_args()

    table, editable, rescheduled_status = load_table()
    check = Checks()
    for action, expected in CONTRACT.items():
        t = table[action]
        got = ({str(s) for s in t.allowed_from}, str(t.to), {str(s) for s in t.unchanged_on})
        check.equal("the code's table is the contract's", got, expected, action)
    sink = SmtpSink(port=args.smtp_sink_port).start() if args.smtp_sink_port is not None else None
    api = Api(args.base_url, seed_key(args))
    mail = Mail(sink, check)
    walk = Walk(api, check, mail, table, editable, rescheduled_status)
    started, outcomes = time.monotonic(), {}
    try:
        for action in [*table, "update"]:
            for label, status, make in walk.recipes():
                group = f"{action} from {status} ({label})"
                outcomes[group] = guarded(check, group, walk.cell, action, label, status, make)
        guarded(check, "reschedule with and without Idempotency-Key", walk.idempotency)
        guarded(check, "PATCH edge cases", walk.patch_edges)
        mail.report(args.settle)
    finally:
        if sink:
            sink.stop()

    print(f"\n{'check group':<66}{'outcome':<26}{'passed':>7}{'failed':>7}")
    for group, (passed, failed) in check.counts.items():
        print(f"{group:<66}{outcomes.get(group, ''):<26}{passed:>7}{failed:>7}")
    print(
        "\nNot reachable over HTTP, so not walked: DRAFT (routed within the create request), "
        "COMPLETED and NO_SHOW (need a booking that has started)."
    )
    passed = sum(p for p, _ in check.counts.values())
    print(
        f"{passed} checks passed, {len(check.failures)} failed; {api.requests} requests "
        f"({api.waits} waits on the rate limit) in {time.monotonic() - started:.1f}s"
    )
    for failure in check.failures[:50]:
        print("FAILED", failure)
    print("OK" if not check.failures else "FAILED")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
