"""The mail server refusing, failing or hanging, against a real SMTP server (tests/smtp_sink.py)
in this process and the real send (``email_send`` over Django's SMTP backend): what is
retried and when, what fails at once, what staff see in the admin, and the one resend.
"""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications import services
from notifications.emails import booking_email_build, outbox_message_id
from notifications.models import EmailOutbox
from notifications.services import MAX_ATTEMPTS, email_queue, email_retry_delay, email_send
from tests.factories import BookingFactory

from ..smtp_sink import DROP, HANG
from .live import free_port, wait_until

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:notifications_emailoutbox_changelist")


@pytest.fixture
def smtp(settings, sink):
    """This process sends through the sink, with a 1 s timeout per SMTP step."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 1
    return sink


class Clock:
    """``timezone.now`` under the test's control: each attempt happens when the test says."""

    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def to(self, when):
        self.now = when


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    return clock


class Extremes:
    """A random source that answers the lowest, then the highest possible value, in turn."""

    def __init__(self):
        self.calls = 0

    def uniform(self, low, high):
        self.calls += 1
        return low if self.calls % 2 else high


@pytest.fixture
def booking(event_type, hosts):
    return BookingFactory(event_type=event_type, assigned_to=hosts[0])


def _queue(booking, key="created"):
    return email_queue(booking=booking, kind="confirmation", event_key=f"{booking.id}:{key}")


def _refuse(verb, code, text):
    return lambda seen: (code, text) if seen == verb else None


# --- The back-off -------------------------------------------------------------------------


class Fixed:
    """A random source that always answers the lowest (0) or the highest (1) possible value."""

    def __init__(self, at: int):
        self.at = at

    def uniform(self, low, high):
        return (low, high)[self.at]


@pytest.mark.parametrize("attempt", range(1, MAX_ATTEMPTS))
def test_the_delay_is_exponential_within_its_jitter_bounds(attempt):
    step = 30 * 2 ** (attempt - 1)

    assert email_retry_delay(attempt, rng=Fixed(0)) == timedelta(seconds=step / 2)
    assert email_retry_delay(attempt, rng=Fixed(1)) == timedelta(seconds=step)
    # Never shorter than the previous attempt's longest wait: the back-off still grows.
    if attempt > 1:
        assert email_retry_delay(attempt, rng=Fixed(0)) == email_retry_delay(
            attempt - 1, rng=Fixed(1)
        )


def test_the_delay_is_not_constant():
    rng = random.Random(7)  # seeded: the same values on every run
    delays = [email_retry_delay(3, rng=rng).total_seconds() for _ in range(50)]

    assert all(60 <= delay <= 120 for delay in delays)
    assert len(set(delays)) == 50  # spread out, not one value
    assert max(delays) - min(delays) > 30  # over most of the interval


# --- Refusals and failures ------------------------------------------------------------------


def test_a_temporary_refusal_is_retried_with_back_off_then_fails_with_its_error(
    smtp, booking, clock, monkeypatch, dispatched, admin_client
):
    monkeypatch.setattr(services, "retry_random", Extremes())
    smtp.fault = _refuse("RCPT", 451, "4.7.1 Greylisted, try again later")
    row = _queue(booking)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        attempted_at = clock.now
        assert email_send(outbox_id=row.pk) is False
        row.refresh_from_db()
        assert row.attempts == attempt
        assert "(451, b'4.7.1 Greylisted, try again later')" in row.last_error
        if attempt < MAX_ATTEMPTS:
            step = 30 * 2 ** (attempt - 1)
            # Extremes: the lowest wait after odd attempts, the highest after even ones.
            wait = step / 2 if attempt % 2 else step
            assert row.status == EmailOutbox.Status.PENDING
            assert row.next_attempt_at == attempted_at + timedelta(seconds=wait)
            # Not due before then: an early task or relay claims nothing, sends nothing.
            clock.to(row.next_attempt_at - timedelta(milliseconds=1))
            assert email_send(outbox_id=row.pk) is False
            clock.to(row.next_attempt_at)

    assert row.status == EmailOutbox.Status.FAILED
    assert row.last_error.startswith("SMTPRecipientsRefused: ")
    assert smtp.messages == []
    # Staff see it: the list's "failed" filter shows the row and its error.
    page = admin_client.get(CHANGELIST, {"status__exact": "failed"}).content.decode()
    assert '<td class="field-short_error">SMTPRecipientsRefused:' in page
    assert "4.7.1 Greylisted" in page
    assert reverse("admin:notifications_emailoutbox_change", args=[row.pk]) in page


@pytest.mark.parametrize(
    ("verb", "code", "error"),
    [
        ("MAIL", 553, "SMTPSenderRefused"),
        ("RCPT", 550, "SMTPRecipientsRefused"),
        ("DATA", 554, "SMTPDataError"),
        (".", 554, "SMTPDataError"),
    ],
)
def test_a_permanent_refusal_fails_at_once(smtp, booking, dispatched, verb, code, error):
    smtp.fault = _refuse(verb, code, "5.1.1 No such mailbox here")
    row = _queue(booking)

    assert email_send(outbox_id=row.pk) is False

    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.FAILED, 1)
    assert row.last_error.startswith(f"{error}: ")
    assert f"{code}, b'5.1.1 No such mailbox here'" in row.last_error
    assert smtp.messages == []


@pytest.mark.parametrize("verb", ["MAIL", "DATA", "."])
def test_a_temporary_refusal_of_any_step_is_retried(smtp, booking, dispatched, verb):
    smtp.fault = _refuse(verb, 421, "4.3.2 System not accepting network messages")
    row = _queue(booking)

    assert email_send(outbox_id=row.pk) is False

    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.PENDING, 1)
    assert "421" in row.last_error
    assert smtp.messages == []


def test_a_refused_connection_is_retried(settings, booking, dispatched):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    settings.EMAIL_TIMEOUT = 1
    row = _queue(booking)

    assert email_send(outbox_id=row.pk) is False

    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.PENDING, 1)
    assert row.last_error.startswith("ConnectionRefusedError: ")


def test_a_server_that_never_answers_times_out_and_is_retried(smtp, booking, dispatched):
    smtp.fault = lambda verb: HANG if verb == "CONNECT" else None
    row = _queue(booking)

    started = time.monotonic()
    assert email_send(outbox_id=row.pk) is False
    took = time.monotonic() - started

    assert 0.9 < took < 5  # EMAIL_TIMEOUT (1 s here), not forever
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.PENDING, 1)
    assert row.last_error.startswith("SMTPServerDisconnected: ")
    assert "timed out" in row.last_error


def test_no_answer_to_the_end_of_data_is_a_retry_and_the_message_was_not_taken(
    smtp, booking, dispatched, clock
):
    release = threading.Event()
    smtp.fault = lambda verb: release.wait(10) and None if verb == "." else None
    row = _queue(booking)

    assert email_send(outbox_id=row.pk) is False  # timed out waiting for the 250
    release.set()

    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.PENDING, 1)
    assert "timed out" in row.last_error
    # The client had hung up before the server took it: not delivered, so the retry is the
    # one copy.
    wait_until(lambda: smtp.ended == 1, what="the sink to end the conversation")
    assert smtp.messages == []
    smtp.fault = None
    clock.to(row.next_attempt_at)
    assert email_send(outbox_id=row.pk) is True
    assert len(smtp.messages) == 1


def test_a_lost_reply_after_the_server_took_it_is_the_one_duplicate_same_message_id(
    smtp, booking, dispatched, clock
):
    """The window no client can close: the server has the message, the 250 never arrives."""
    smtp.fault = lambda verb: DROP if verb == "QUEUED" else None
    row = _queue(booking)

    assert email_send(outbox_id=row.pk) is False
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.PENDING, 1)
    assert row.last_error.startswith("SMTPServerDisconnected: ")

    smtp.fault = None
    clock.to(row.next_attempt_at)
    assert email_send(outbox_id=row.pk) is True

    first, second = smtp.wait_for(2)
    assert first.message_id == second.message_id == outbox_message_id(row)


def _sent_record_failing(monkeypatch, times: int, then=lambda: None) -> list:
    """The database unreachable for the next ``times`` updates recording a row SENT (as
    psycopg raises it when PostgreSQL restarts); returns the list of connection closes."""
    import psycopg
    from django.db import OperationalError
    from django.db.models import QuerySet

    update, closes = QuerySet.update, []

    def failing_update(self, **values):
        if values.get("status") == EmailOutbox.Status.SENT and len(closes) < times:
            then()
            exc = OperationalError("server closed the connection unexpectedly")
            exc.__cause__ = psycopg.OperationalError("server closed the connection unexpectedly")
            raise exc
        return update(self, **values)

    monkeypatch.setattr(QuerySet, "update", failing_update)
    # Not the test's own connection (its transaction holds the test's rows): count instead.
    monkeypatch.setattr(services.connection, "close", lambda: closes.append(1))
    monkeypatch.setattr(services, "SENT_RECORD_RETRY_SECONDS", 0)
    return closes


def test_a_sent_record_the_database_refused_is_retried_not_sent_again(
    smtp, booking, dispatched, monkeypatch
):
    """Found black-box: PostgreSQL restarted under load while a worker was sending, the
    server took the message, the SENT update failed, and the relay sent it again."""
    row = _queue(booking)
    closes = _sent_record_failing(monkeypatch, times=3)

    assert email_send(outbox_id=row.pk) is True

    assert len(closes) == 3
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.SENT, 1)
    assert [m.message_id for m in smtp.messages] == [outbox_message_id(row)]


def test_a_sent_record_is_retried_only_within_the_lease(
    smtp, booking, dispatched, monkeypatch, clock
):
    from django.db import OperationalError

    row = _queue(booking)
    _sent_record_failing(monkeypatch, times=1, then=lambda: clock.to(clock.now + services.LEASE))

    with pytest.raises(OperationalError):
        email_send(outbox_id=row.pk)

    row.refresh_from_db()  # pending: sent again after its lease, the documented duplicate
    assert (row.status, row.attempts) == (EmailOutbox.Status.PENDING, 1)
    assert len(smtp.messages) == 1


def test_sent_is_recorded_before_quit_and_a_failing_quit_changes_nothing(
    smtp, booking, dispatched, monkeypatch
):
    from django.core.mail.backends.smtp import EmailBackend

    row = _queue(booking)
    statuses_at_close = []
    close = EmailBackend.close

    def recording_close(self):  # the QUIT: by then the row must already say SENT
        statuses_at_close.append(EmailOutbox.objects.get(pk=row.pk).status)
        close(self)

    monkeypatch.setattr(EmailBackend, "close", recording_close)
    smtp.fault = lambda verb: DROP if verb == "QUIT" else None

    assert email_send(outbox_id=row.pk) is True

    assert statuses_at_close == [EmailOutbox.Status.SENT]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (EmailOutbox.Status.SENT, 1, "")
    assert len(smtp.messages) == 1


# --- The Message-ID -------------------------------------------------------------------------


def test_the_message_id_is_stable_per_row_and_distinct_between_rows(booking, settings):
    settings.DEFAULT_FROM_EMAIL = "Bookings <bookings@mail.example>"
    first = _queue(booking, "created")
    second = _queue(booking, "cancelled")

    built = [booking_email_build(row).message()["Message-ID"] for row in (first, first, second)]
    assert built[0] == built[1] == f"<{booking.id}.created@mail.example>"
    assert built[2] == f"<{booking.id}.cancelled@mail.example>"
    # Any event key makes a valid, unique id: other characters are escaped, never dropped.
    odd = EmailOutbox(event_key="a b:ü:@:")
    assert outbox_message_id(odd) == "<a=20b.=C3=BC.=40.=@mail.example>"


# --- Resending ------------------------------------------------------------------------------


def test_a_failed_email_goes_out_once_after_the_admins_resend(
    smtp, booking, admin_client, django_capture_on_commit_callbacks
):
    smtp.fault = _refuse("RCPT", 550, "5.1.1 Mailbox unavailable")
    with django_capture_on_commit_callbacks(execute=True):  # the eager task: this process
        row = _queue(booking)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailOutbox.Status.FAILED, 1)

    smtp.fault = None  # the mailbox is fixed; staff resend it, one action
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CHANGELIST, {"action": "resend", "_selected_action": [row.pk]}, follow=True
        )

    assert [str(m) for m in response.context["messages"]] == [
        "Queued 1 for resending; skipped 0 (not failed)."
    ]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (EmailOutbox.Status.SENT, 1, "")
    [received] = smtp.messages
    assert received.message_id == outbox_message_id(row)
    assert received.rcpt_to == (booking.attendee_email,)
    # A second resend of the sent row: skipped, nothing more sent.
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(CHANGELIST, {"action": "resend", "_selected_action": [row.pk]})
    assert len(smtp.messages) == 1
