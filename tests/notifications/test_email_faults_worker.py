"""The mail server failing and the worker killed, end to end: a real Celery worker (a process)
sending through a real SMTP server (tests/smtp_sink.py, in this process) on Redis and
PostgreSQL; the emails are queued and relayed by the real services in this process, which
publish to the worker's broker.

The worker runs with a 1 s SMTP timeout, a 9 s lease and no relay grace, so a killed send is
due for the relay 9 s after its claim (in production: 5 minutes, then the relay's minute).
"""

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.urls import reverse
from django.utils import timezone

from notifications import services
from notifications.emails import outbox_message_id
from notifications.models import EmailOutbox
from notifications.services import email_queue, email_relay
from tests.factories import BookingFactory

from .live import BIN, log, start, stop, wait_ready, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 9


@pytest.fixture
def email_url(sink):
    return sink.url


@pytest.fixture
def process_env(process_env):
    return {
        **process_env,
        "EMAIL_TIMEOUT_SECONDS": "1",
        "EMAIL_SEND_LEASE_SECONDS": str(LEASE_SECONDS),
        "EMAIL_RELAY_GRACE_SECONDS": "0",
    }


@pytest.fixture
def to_broker(broker_url, monkeypatch, settings):
    """This process hands rows to the worker through Redis, as the API and beat do (its own
    settings run tasks in-process). The relay's grace is the worker's: none."""
    app = Celery("test-publisher", broker=broker_url, set_as_current=False)
    published = []

    def email_dispatch(*, outbox_id: int) -> bool:
        app.send_task("notifications.tasks.send_email_task", kwargs={"outbox_id": outbox_id})
        published.append(outbox_id)
        return True

    monkeypatch.setattr(services, "email_dispatch", email_dispatch)
    settings.EMAIL_RELAY_GRACE_SECONDS = 0
    yield published
    app.close()


_slots = iter(range(10_000))


def _booking(event_type, hosts):
    start = timezone.now().replace(microsecond=0) + timedelta(days=1, hours=next(_slots))
    return BookingFactory(event_type=event_type, assigned_to=hosts[0], start_time=start)


def _queue(booking) -> EmailOutbox:
    """Queue the booking's confirmation; it is published once this (autocommit) write is done."""
    return email_queue(
        booking=booking, kind="confirmation", event_key=f"{booking.id}:created", supersede=False
    )


def _row(row) -> EmailOutbox:
    return EmailOutbox.objects.get(pk=row.pk)


def test_a_refusing_server_is_retried_then_sent_once_and_a_failed_row_resent_once(
    event_type, hosts, sink, to_broker, start_worker, broker_url, admin_client
):
    worker = start_worker(broker_url)
    sink.fault = lambda verb: (451, "4.3.0 Mail server busy, try later") if verb == "RCPT" else None

    row = _queue(_booking(event_type, hosts))
    wait_until(lambda: _row(row).last_error, what=f"the worker's attempt\n{log(worker)}")
    row = _row(row)
    assert row.status == EmailOutbox.Status.PENDING
    assert "451" in row.last_error
    assert timedelta(seconds=10) < row.next_attempt_at - timezone.now() <= timedelta(seconds=30)
    assert sink.messages == []

    # The server accepts again. The back-off has passed (moved back: not waited for), the
    # relay hands the row over, and it goes out once.
    sink.fault = None
    EmailOutbox.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert email_relay() == 1
    wait_until(lambda: _row(row).status == EmailOutbox.Status.SENT, what="the relayed send")
    assert (_row(row).attempts, _row(row).last_error) == (2, "")
    assert [m.message_id for m in sink.wait_for(1)] == [outbox_message_id(row)]
    assert email_relay() == 0  # nothing left to relay: still one message

    # A mailbox refused for good fails at once; staff fix it and resend: one message more.
    sink.fault = lambda verb: (550, "5.1.1 No such user") if verb == "RCPT" else None
    failed = _queue(_booking(event_type, hosts))
    wait_until(lambda: _row(failed).status == EmailOutbox.Status.FAILED, what="the refusal")
    assert _row(failed).attempts == 1
    assert "550" in _row(failed).last_error
    page = admin_client.get(
        reverse("admin:notifications_emailoutbox_changelist"), {"status__exact": "failed"}
    ).content.decode()
    assert "SMTPRecipientsRefused: {" in page

    sink.fault = None
    response = admin_client.post(
        reverse("admin:notifications_emailoutbox_changelist"),
        {"action": "resend", "_selected_action": [failed.pk]},
    )
    assert response.status_code == 302
    wait_until(lambda: _row(failed).status == EmailOutbox.Status.SENT, what="the resent email")
    # A copy arrives before its row is recorded sent: these are all the sink will get.
    assert [m.message_id for m in sink.messages] == [
        outbox_message_id(row),
        outbox_message_id(failed),
    ]


# --- A worker killed mid-send ------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _sender(client_port: int, workers) -> tuple[int, int]:
    """(pool process, its worker's main process) holding the TCP connection from that port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == client_port:
                inodes.add(f"socket:[{fields[9]}]")
    for worker in workers:
        for pid in _children(worker.pid):
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) in inodes:
                            return pid, worker.pid
    raise AssertionError(f"no pool process holds the connection from port {client_port}")


def _start_prefork_worker(process_env, broker_url, process_logs, number):
    """A worker as run in production: a main process and pool processes, which send."""
    env = {**process_env, "CELERY_BROKER_URL": broker_url}
    args = [str(BIN / "celery"), "-A", "bookings_project", "worker", "--pool=prefork"]
    args += ["--concurrency=2", "--without-mingle", "--without-gossip", "--without-heartbeat"]
    args += ["-l", "info", "-n", f"killable{number}@%h"]
    return start(args, env, process_logs / f"prefork-{number}.log")


# Where the sink holds the conversation while the worker is killed, and what must follow.
HELD = {
    "RCPT": "before DATA",
    "DATA": "before DATA",
    ".": "during DATA: the whole message sent, not yet taken",
    "QUEUED": "after the sink took it, before its 250 reached the worker",
    "QUIT": "after the worker recorded SENT, at QUIT",
}


def test_a_worker_killed_mid_send_the_email_still_goes_out_duplicates_counted(
    event_type, hosts, sink, to_broker, broker_url, process_env, process_logs
):
    rng = random.Random(11)  # the varied delays and kill times: the same on every run
    # Two workers (as M workers run in production), each with two pool processes: a killed
    # pool process is replaced by its worker within seconds, meanwhile the others send.
    workers = [_start_prefork_worker(process_env, broker_url, process_logs, n) for n in (0, 1)]
    plan = [*HELD] * 2 + ["timed"] * 5  # 15 rounds
    whole = 7  # in this round the whole worker dies (main process too): a new one is started
    rounds = []
    try:
        for worker in workers:
            wait_ready(worker)
        for number, stage in enumerate(plan):
            seen: dict = {"stage": stage}

            def kill(seen=seen, whole=number == whole):
                if "killed_at" in seen:
                    return
                pool, main = seen["sender"]
                seen["killed_at"] = time.monotonic()
                os.kill(pool, signal.SIGKILL)
                if whole:
                    os.kill(main, signal.SIGKILL)
                wait_until(lambda: not _alive(pool), timeout=10, what="the kill")
                seen["dead_at"] = time.monotonic()

            def fault(verb, seen=seen, stage=stage):
                if "sender" not in seen:  # the pool process on the other end of this connection
                    seen["sender"] = _sender(sink.local.client[1], workers)
                if verb == stage:
                    time.sleep(rng.uniform(0, 0.1))  # held a varied time (< the 1 s timeout)
                    kill()
                elif stage == "timed" and verb == "MAIL":
                    # No hold: killed a random moment later, wherever the send is by then.
                    threading.Timer(rng.uniform(0, 0.012), kill).start()
                return None

            sink.fault = fault
            row = _queue(_booking(event_type, hosts))
            wait_until(lambda seen=seen: "dead_at" in seen, what=f"round {number}'s kill")
            rounds.append((row, seen))
            if number == whole:
                workers.append(_start_prefork_worker(process_env, broker_url, process_logs, 2))
        sink.fault = None

        # Every killed send is pending with its lease; once that has passed, the relay hands
        # each to the worker again.
        pending = EmailOutbox.objects.filter(status=EmailOutbox.Status.PENDING)
        last_due = max(pending.values_list("next_attempt_at", flat=True), default=timezone.now())
        assert last_due - timezone.now() <= timedelta(seconds=LEASE_SECONDS)
        wait_until(lambda: timezone.now() >= last_due, timeout=LEASE_SECONDS + 5, what="the leases")
        wait_ready(workers[-1])
        relayed = email_relay()
        wait_until(
            lambda: not EmailOutbox.objects.filter(status=EmailOutbox.Status.PENDING).exists(),
            timeout=60,
            what=f"every relayed email to be sent\n{log(workers[-1])}",
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                stop(worker)

    copies = Counter(m.message_id for m in sink.messages)
    first_taken = {}
    for message in sink.messages:
        first_taken.setdefault(message.message_id, message.at)
    outcomes = Counter()
    for row, seen in rounds:
        message_id = outbox_message_id(row)
        taken_at = first_taken.get(message_id)
        if taken_at is not None and taken_at < seen["killed_at"]:
            when = "after the sink took it"
        elif taken_at is not None and taken_at < seen["dead_at"]:
            when = "as the sink took it (raced the kill)"
        else:
            when = "before the sink took it"
        outcomes[(seen["stage"], when, copies[message_id])] += 1
        assert _row(row).status == EmailOutbox.Status.SENT, (seen, _row(row).last_error)
        assert copies[message_id] in (1, 2), seen  # at least once; a duplicate at most
        if copies[message_id] == 2:
            # A duplicate only when the kill landed once the sink had the message.
            assert when != "before the sink took it", seen
        if seen["stage"] in HELD:
            # Held rounds are exact: only a kill between the sink taking the message and the
            # worker hearing its 250 makes a second copy.
            assert copies[message_id] == (2 if seen["stage"] == "QUEUED" else 1), seen

    print(f"\n{len(rounds)} rounds, relayed {relayed}; outcomes (stage, kill, copies):")
    for (stage, when, count), times in sorted(outcomes.items()):
        label = f"{stage}: {HELD[stage]}" if stage in HELD else "timed: a random moment"
        print(f"  {times:2} x {label:66} kill {when:24} -> {count} copies")
    duplicates = sum(1 for row, _ in rounds if copies[outbox_message_id(row)] == 2)
    print(f"  duplicates: {duplicates} of {len(rounds)}")
    assert len(sink.messages) == len(rounds) + duplicates
