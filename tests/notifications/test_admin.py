"""The email outbox in the admin: read-only rows, exact searches on indexes, and resend."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications.admin import EmailOutboxAdmin
from notifications.models import EmailOutbox
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:notifications_emailoutbox_changelist")


@pytest.fixture
def booking(event_type, hosts):
    return BookingFactory(event_type=event_type, assigned_to=hosts[0])


def _row(booking, status, **fields) -> EmailOutbox:
    now = timezone.now()
    return EmailOutbox.objects.create(
        booking=booking,
        kind="confirmation",
        event_key=f"{booking.id}:{status}:{EmailOutbox.objects.count()}",
        to_email=booking.attendee_email,
        ical_sequence=booking.ical_sequence,
        status=status,
        attempts=6 if status == "failed" else 1,
        last_error="SMTPRecipientsRefused: " + "x" * 300 if status == "failed" else "",
        next_attempt_at=now - timedelta(hours=1),
        sent_at=now if status == "sent" else None,
        **fields,
    )


@pytest.fixture
def failed(booking):
    return _row(booking, "failed")


@pytest.fixture
def sent(booking):
    return _row(booking, "sent")


def _staff(client, *codenames: str):
    user = User.objects.create_user("support", password="pw-support-123", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="notifications", codename__in=codenames)
    )
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _ids(response) -> list[int]:
    return [row.pk for row in response.context["cl"].result_list]


def test_the_list_shows_the_booking_as_a_link_and_a_short_error(admin_client, failed, booking):
    response = admin_client.get(CHANGELIST)

    page = response.content.decode()
    booking_url = reverse("admin:bookings_booking_change", args=[booking.pk])
    assert f'<a href="{booking_url}">{booking.pk}</a>' in page
    assert "SMTPRecipientsRefused: xxx" in page
    assert "x" * 100 not in page  # the error is cut short in the list
    for column in ("kind", "to_email", "status", "attempts", "created_at", "sent_at"):
        assert f"column-{column}" in page, column


def test_the_list_joins_nothing(admin_client, failed, sent):
    with CaptureQueriesContext(connection) as captured:
        admin_client.get(CHANGELIST)

    listed = [q["sql"] for q in captured.captured_queries if "emailoutbox" in q["sql"]]
    assert listed
    assert not any("JOIN" in sql for sql in listed), listed


@pytest.mark.parametrize(("status", "expected"), [("failed", "failed"), ("sent", "sent")])
def test_filter_by_status(admin_client, failed, sent, status, expected):
    response = admin_client.get(CHANGELIST, {"status__exact": status})

    assert _ids(response) == [{"failed": failed, "sent": sent}[expected].pk]


def test_search_by_exact_address_any_case_or_exact_booking_id(
    admin_client, failed, booking, event_type, hosts
):
    other = _row(BookingFactory(event_type=event_type, assigned_to=hosts[1]), "sent")

    by_address = admin_client.get(CHANGELIST, {"q": booking.attendee_email.upper()})
    by_booking = admin_client.get(CHANGELIST, {"q": other.booking_id})
    partial = admin_client.get(CHANGELIST, {"q": booking.attendee_email[:-4]})

    assert _ids(by_address) == [failed.pk]
    assert _ids(by_booking) == [other.pk]
    assert _ids(partial) == []


def test_search_never_scans_with_like(admin_client, failed):
    with CaptureQueriesContext(connection) as captured:
        admin_client.get(CHANGELIST, {"q": "someone@example.com"})

    searched = [q["sql"] for q in captured.captured_queries if "emailoutbox" in q["sql"]]
    assert searched
    if connection.vendor == "postgresql":  # SQLite writes iexact as LIKE itself
        assert not any("LIKE" in sql.upper() for sql in searched), searched


@pytest.mark.postgres
@pytest.mark.parametrize("term", ["someone@example.com", "bkg_01J0000000000000000000000"])
def test_search_uses_an_index(rf, admin_user, failed, term):
    request = rf.get(CHANGELIST, {"q": term})
    request.user = admin_user
    model_admin = EmailOutboxAdmin(EmailOutbox, admin_site=None)
    queryset, _ = model_admin.get_search_results(request, EmailOutbox.objects.all(), term)
    sql, params = queryset.query.sql_with_params()

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "outbox_to_email_upper" in plan, plan
    assert "booking_id" in plan, plan  # the foreign key's index
    assert "Seq Scan" not in plan, plan


def test_rows_are_read_only_even_for_a_superuser(admin_client, failed):
    url = reverse("admin:notifications_emailoutbox_change", args=[failed.pk])
    before = EmailOutbox.objects.filter(pk=failed.pk).values().get()

    page = admin_client.get(url)
    post = admin_client.post(url, {"status": "sent", "attempts": 0, "to_email": "x@example.com"})
    add = admin_client.get(reverse("admin:notifications_emailoutbox_add"))
    delete = admin_client.post(
        reverse("admin:notifications_emailoutbox_delete", args=[failed.pk]), {"post": "yes"}
    )

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (post.status_code, add.status_code, delete.status_code) == (403, 403, 403)
    assert EmailOutbox.objects.filter(pk=failed.pk).values().get() == before


def test_resend_queues_the_failed_and_skips_the_rest(
    admin_client, failed, sent, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CHANGELIST,
            {"action": "resend", "_selected_action": [failed.pk, sent.pk]},
            follow=True,
        )

    assert _messages(response) == ["Queued 1 for resending; skipped 1 (not failed)."]
    failed.refresh_from_db()
    assert failed.status == EmailOutbox.Status.SENT  # the worker (eager here) sent it
    assert len(mailoutbox) == 1


def test_resend_with_the_change_permission_only(
    client, failed, dispatched, django_capture_on_commit_callbacks
):
    staff = _staff(client, "view_emailoutbox", "change_emailoutbox")

    page = staff.get(CHANGELIST)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            CHANGELIST, {"action": "resend", "_selected_action": [failed.pk]}, follow=True
        )
    edit = staff.post(
        reverse("admin:notifications_emailoutbox_change", args=[failed.pk]), {"status": "sent"}
    )

    assert 'value="resend"' in page.content.decode()
    assert _messages(response) == ["Queued 1 for resending; skipped 0 (not failed)."]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (EmailOutbox.Status.PENDING, 0)
    assert dispatched == [failed.pk]
    assert edit.status_code == 403  # the change permission runs the action, never a form


def test_without_the_change_permission_there_is_no_resend(
    client, failed, dispatched, django_capture_on_commit_callbacks
):
    staff = _staff(client, "view_emailoutbox")
    before = EmailOutbox.objects.filter(pk=failed.pk).values().get()

    page = staff.get(CHANGELIST)
    with django_capture_on_commit_callbacks(execute=True):
        forged = staff.post(
            CHANGELIST, {"action": "resend", "_selected_action": [failed.pk]}, follow=True
        )

    assert page.status_code == 200
    assert 'value="resend"' not in page.content.decode()
    assert forged.status_code == 200
    assert _messages(forged) == []  # no action of theirs: the POST only shows the list again
    assert EmailOutbox.objects.filter(pk=failed.pk).values().get() == before
    assert dispatched == []
