"""Support staff in a real browser: find a booking, cancel, reschedule, fix an attendee's email.

Each test logs in through the admin's login form, works the pages as a person would, checks
what the page then shows and what the database then holds, and saves screenshots under its
own tmp_path (keep them with ``pytest --basetemp=DIR``).
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from bookings.models import Booking, BookingHistory
from notifications.models import EmailOutbox

from .pages import (
    PASSWORD,
    admin_login,
    inline_rows,
    messages,
    open_admin,
    screenshot,
    status_badge,
    submit,
    type_and_enter,
    wait_for,
)

pytestmark = pytest.mark.browser

CHANGE = "bookings_booking_change"
SENT_OR_QUEUED = (EmailOutbox.Status.PENDING, EmailOutbox.Status.SENT)


def _row_with(rows: list[str], *words: str) -> str | None:
    return next((row for row in rows if all(word.lower() in row for word in words)), None)


def test_find_a_booking_by_attendee_email(browser, live_server, support_user, desk, tmp_path):
    admin_login(browser, live_server, support_user.username, PASSWORD)
    open_admin(browser, live_server, "bookings_booking_changelist")
    screenshot(browser, tmp_path, "changelist")

    search = browser.find_element(By.ID, "searchbar")
    type_and_enter(browser, search, "ANN@Example.com")  # exact address, any case
    wait_for(browser, "#result_list")

    rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")]
    screenshot(browser, tmp_path, "search-result")
    assert len(rows) == 1, rows
    assert desk["ann"].id in rows[0]
    assert "ann@example.com" in rows[0]
    page = browser.page_source
    for other in ("joann", "cancel", "move", "edit"):  # joann@… contains ann@…: not a match
        assert desk[other].id not in page


def test_cancel_a_booking_with_a_reason(browser, live_server, support_user, desk, tmp_path):
    booking = desk["cancel"]
    reason = "The host is ill; the attendee was told by phone."
    admin_login(browser, live_server, support_user.username, PASSWORD)
    open_admin(browser, live_server, CHANGE, booking.id)
    screenshot(browser, tmp_path, "before-cancel")

    form = browser.find_element(By.ID, "booking-cancel-form")
    form.find_element(By.NAME, "reason").send_keys(reason)
    Select(form.find_element(By.NAME, "cancelled_by")).select_by_value("host")
    submit(browser, browser.find_element(By.ID, "booking-action-cancel"))
    screenshot(browser, tmp_path, "after-cancel")

    assert messages(browser, "success"), browser.page_source
    assert not messages(browser, "error")
    badge = status_badge(browser)
    assert badge.text == "CANCELLED"
    assert "booking-status--cancelled" in badge.get_attribute("class").split()
    history = inline_rows(browser, "history-group")
    assert _row_with(history, "cancelled", "staff"), history
    emails = inline_rows(browser, "emails-group")
    row = _row_with(emails, "cancellation", "cancel@example.com")
    assert row is not None, emails
    assert any(status in row for status in SENT_OR_QUEUED), row

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert booking.cancelled_by == Booking.CancelledBy.HOST
    assert booking.cancellation_reason == reason
    entry = booking.history.get()
    assert entry.action == BookingHistory.Action.CANCELLED
    assert (entry.actor_type, entry.actor_id) == ("staff", str(support_user.pk))
    email = booking.emails.get()
    assert (email.kind, email.to_email) == ("cancellation", "cancel@example.com")
    assert email.status in SENT_OR_QUEUED


def test_reschedule_a_booking(browser, live_server, support_user, desk, tmp_path):
    original = desk["move"]
    new_start = (original.start_time + timedelta(days=3)).replace(minute=30)
    admin_login(browser, live_server, support_user.username, PASSWORD)
    open_admin(browser, live_server, CHANGE, original.id)

    form = browser.find_element(By.ID, "booking-reschedule-form")
    form.find_element(By.NAME, "start_time").send_keys(new_start.strftime("%Y-%m-%d %H:%M"))
    form.find_element(By.NAME, "reason").send_keys("The attendee asked for Friday.")
    screenshot(browser, tmp_path, "before-reschedule")
    submit(browser, browser.find_element(By.ID, "booking-action-reschedule"))
    screenshot(browser, tmp_path, "after-reschedule")

    assert messages(browser, "success"), browser.page_source
    original.refresh_from_db()
    assert original.status == Booking.Status.CANCELLED
    new = Booking.objects.get(rescheduled_from=original)
    assert original.rescheduled_to_id == new.id
    assert new.start_time == new_start
    assert new.status == Booking.Status.RESCHEDULED
    # The page is the new booking's, and it links back to the one it replaced.
    assert browser.current_url.split("?")[0].endswith(reverse(f"admin:{CHANGE}", args=[new.id]))
    assert status_badge(browser).text == "RESCHEDULED"
    back = reverse(f"admin:{CHANGE}", args=[original.id])
    assert browser.find_elements(By.CSS_SELECTOR, f'#content a[href$="{back}"]')


def test_edit_an_attendee_email(browser, live_server, support_user, desk, tmp_path):
    booking = desk["edit"]
    new_address = "edit.new@example.com"
    before = set(EmailOutbox.objects.values_list("pk", flat=True))
    admin_login(browser, live_server, support_user.username, PASSWORD)
    open_admin(browser, live_server, CHANGE, booking.id)

    field = browser.find_element(By.ID, "id_attendee_email")
    field.clear()
    field.send_keys(new_address)
    submit(browser, browser.find_element(By.CSS_SELECTOR, "input[name=_continue]"))
    screenshot(browser, tmp_path, "after-email-change")

    assert messages(browser, "success"), browser.page_source
    assert not browser.find_elements(By.CSS_SELECTOR, ".errornote, .errorlist")
    assert browser.find_element(By.ID, "id_attendee_email").get_attribute("value") == new_address
    emails = inline_rows(browser, "emails-group")
    assert _row_with(emails, new_address), emails
    history = inline_rows(browser, "history-group")
    assert _row_with(history, "staff"), history

    booking.refresh_from_db()
    assert booking.attendee_email == new_address
    new_rows = EmailOutbox.objects.exclude(pk__in=before)
    assert [(row.booking_id, row.to_email) for row in new_rows] == [(booking.id, new_address)]
    entry = booking.history.get()
    assert entry.action == BookingHistory.Action.ATTENDEE_UPDATED
    assert (entry.actor_type, entry.actor_id) == ("staff", str(support_user.pk))
    assert entry.changes == {"attendee.email": ["edit@example.com", new_address]}


def test_view_only_staff_see_no_actions(browser, live_server, viewer_user, desk, tmp_path):
    booking = desk["cancel"]
    admin_login(browser, live_server, viewer_user.username, PASSWORD)
    open_admin(browser, live_server, CHANGE, booking.id)
    screenshot(browser, tmp_path, "view-only")

    assert status_badge(browser).text == "SCHEDULED"  # the page is there…
    assert not browser.find_elements(By.CSS_SELECTOR, "#booking-actions button")  # …no action
    assert not browser.find_elements(By.CSS_SELECTOR, "#booking-cancel-form")
    assert not browser.find_elements(By.CSS_SELECTOR, "#booking-reschedule-form")
    assert not browser.find_elements(By.ID, "id_attendee_email")  # read-only, not an input
    booking.refresh_from_db()
    assert booking.status == Booking.Status.SCHEDULED
