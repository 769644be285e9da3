"""Every list action of every admin, posted with forged selections: a message, never a 500.

Walks ``admin.site``'s registry, so an admin added later without ``SelectionCheckedAdmin`` (or
an action that chokes on a value) fails here.
"""

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.test import RequestFactory
from django.urls import reverse

from bookings.admin import SelectionCheckedAdmin
from bookings.admin.selection import NOT_IDS
from notifications.models import EmailOutbox
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db

FORGED = ["abc", "1.5", "", "\x00", "bkg_\x00", "-1", "9" * 40, "1e3", " 1"]


def _actions() -> list[tuple[type, str]]:
    superuser = type("U", (), {"is_active": True, "is_staff": True, "is_superuser": True})()
    superuser.has_perm = lambda *a, **k: True
    request = RequestFactory().get("/")
    request.user = superuser
    return [
        (model, action)
        for model, model_admin in admin.site._registry.items()
        for action in model_admin.get_actions(request)
    ]


def test_every_admin_checks_the_selection():
    unchecked = [
        type(model_admin).__name__
        for model_admin in admin.site._registry.values()
        if not isinstance(model_admin, SelectionCheckedAdmin)
    ]
    assert unchecked == []
    assert len(_actions()) >= 8  # the walk below really covers the project's actions


def test_forged_selections_never_answer_500(admin_client):
    admin_client.raise_request_exception = False
    answers = {}
    for model, action in _actions():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for value in FORGED:
            for extra in ({}, {"index": "0"}):  # with and without a confirmation step
                response = admin_client.post(
                    url, {"action": action, helpers.ACTION_CHECKBOX_NAME: [value], **extra}
                )
                answers[(model.__name__, action, value, bool(extra))] = response.status_code

    errors = {case: status for case, status in answers.items() if status >= 500}
    assert errors == {}
    assert set(answers.values()) <= {200, 302}


def test_a_forged_resend_says_so_and_changes_nothing(admin_client, event_type, hosts):
    booking = BookingFactory(event_type=event_type, assigned_to=hosts[0])
    row = EmailOutbox.objects.create(
        booking=booking,
        kind="confirmation",
        event_key=f"{booking.id}:created",
        to_email=booking.attendee_email,
        status=EmailOutbox.Status.FAILED,
        attempts=6,
        last_error="SMTPDataError: (451, b'later')",
        next_attempt_at=booking.created_at,
    )
    before = EmailOutbox.objects.filter(pk=row.pk).values().get()
    url = reverse("admin:notifications_emailoutbox_changelist")

    response = admin_client.post(
        url, {"action": "resend", helpers.ACTION_CHECKBOX_NAME: [str(row.pk), "abc"]}, follow=True
    )

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [NOT_IDS]
    assert EmailOutbox.objects.filter(pk=row.pk).values().get() == before  # not even the good one
