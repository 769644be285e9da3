"""Real-browser fixtures: Debian's Chromium, driven by Selenium, against the live server.

The browser is the system's (``apt-get install chromium chromium-driver``; ``make test``
installs it when missing), named by path so that Selenium Manager never looks for, let alone
downloads, a driver or a browser of its own. A test that finds no browser fails, saying how
to install one: it is never skipped.
"""

import importlib
import os
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Q
from django.utils import timezone
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from tests.factories import BookingFactory, EventTypeFactory, TeamFactory, TeamMemberFactory

from .pages import PASSWORD, screenshot

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver (as root; `make test` does it)"
WINDOW = (1280, 1024)

# The migration that makes the "Support" group; its name starts with a digit, hence importlib.
support_migration = importlib.import_module("bookings.migrations.0008_support_group")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the test, for the browser fixture to see a failure.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def browser(request, tmp_path, monkeypatch):
    """A headless Chromium; on a failed test it leaves ``failure.png`` in the test's tmp_path."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"The browser tests need Debian's Chromium and its driver; missing: "
            f"{', '.join(missing)}. Install them: {INSTALL}",
            pytrace=False,
        )
    monkeypatch.setenv("SE_OFFLINE", "1")  # belt and braces: Selenium Manager stays offline
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--lang=en-US",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_window_size(*WINDOW)
    yield driver
    try:
        reports = (getattr(request.node, f"rep_{when}", None) for when in ("setup", "call"))
        if any(report is not None and report.failed for report in reports):
            print(f"screenshot of the failure: {screenshot(driver, tmp_path, 'failure')}")
    finally:
        driver.quit()


def permissions(triples) -> list[Permission]:
    """Permissions named as ``(app_label, model, codename)``; every one must exist."""
    query = Q()
    for app_label, model, codename in triples:
        query |= Q(content_type__app_label=app_label, content_type__model=model, codename=codename)
    found = list(Permission.objects.filter(query))
    assert len(found) == len(triples), "a permission the tests name does not exist"
    return found


@pytest.fixture
def support_group(transactional_db):
    # A transactional test starts from a flushed database: rows written by migrations, like
    # this group, are gone after the first such test. Make it again from the migration's list.
    group, _ = Group.objects.get_or_create(name=support_migration.GROUP)
    group.permissions.set(permissions(support_migration.PERMISSIONS))
    return group


@pytest.fixture
def support_user(support_group):
    user = User.objects.create_user(
        "support", "support@example.com", PASSWORD, is_staff=True, first_name="Sam"
    )
    user.groups.add(support_group)
    return user


@pytest.fixture
def viewer_user(transactional_db):
    """Staff who may look at bookings, their history and emails, and do nothing to them."""
    user = User.objects.create_user("viewer", "viewer@example.com", PASSWORD, is_staff=True)
    user.user_permissions.set(
        permissions(
            [
                ("bookings", "booking", "view_booking"),
                ("bookings", "bookinghistory", "view_bookinghistory"),
                ("notifications", "emailoutbox", "view_emailoutbox"),
            ]
        )
    )
    return user


@pytest.fixture
def desk(transactional_db):
    """A team with two hosts and SCHEDULED bookings, one hour apart, from the day after tomorrow.

    ``ann`` and ``joann`` have addresses one inside the other: an exact search finds one.
    """
    team = TeamFactory(name="Support Desk Team")
    hosts = [TeamMemberFactory(team=team, name=f"Host {i}") for i in range(2)]
    event_type = EventTypeFactory(team=team, hosts=hosts, name="Intro call")
    first = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    names = ["ann", "joann", "cancel", "move", "edit"]
    return {
        name: BookingFactory(
            event_type=event_type,
            assigned_to=hosts[0],
            start_time=first + timedelta(hours=i),
            attendee_name=f"{name.title()} Attendee",
            attendee_email=f"{name}@example.com",
        )
        for i, name in enumerate(names)
    }
