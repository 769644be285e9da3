"""API keys in the admin: scopes readable, last use shown, active / revoked, revoking reported."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from bookings.models import ApiKey
from bookings.services import api_key_create

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:bookings_apikey_changelist")


@pytest.fixture
def full(team):
    return api_key_create(team=team, name="full")


@pytest.fixture
def reader(team):
    key, _ = api_key_create(team=team, name="reader", scopes=["bookings:read", "team:read"])
    return key


@pytest.fixture
def revoked(team):
    key, _ = api_key_create(team=team, name="revoked")
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now() - timedelta(days=2))
    key.refresh_from_db()
    return key


def _row(page: str, key: ApiKey) -> str:
    """The changelist's table row of ``key``."""
    start = page.index(f">{key.prefix}</a>")
    return page[start : page.index("</tr>", start)]


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_list_shows_scopes_and_last_use(admin_client, full, reader):
    key, secret = full
    APIClient(HTTP_X_API_KEY=secret).get("/v1/bookings")
    key.refresh_from_db()

    page = admin_client.get(CHANGELIST).content.decode()

    assert '<td class="field-scope_summary">all</td>' in _row(page, key)
    assert "bookings:read, team:read" in _row(page, reader)
    assert "column-last_used_at" in page
    assert key.last_used_at is not None
    assert '<td class="field-last_used_at nowrap">-</td>' in _row(page, reader)  # never used
    assert '<td class="field-last_used_at nowrap">-</td>' not in _row(page, key)


def test_the_key_page_lists_each_scope_and_the_last_use(admin_client, reader):
    used = timezone.now() - timedelta(hours=3)
    ApiKey.objects.filter(pk=reader.pk).update(last_used_at=used)

    page = admin_client.get(reverse("admin:bookings_apikey_change", args=[reader.pk]))

    html = page.content.decode()
    assert "bookings:read<br>team:read" in html
    assert "[&quot;bookings:read&quot;" not in html  # not the raw JSON list
    assert page.context["adminform"].form.instance.last_used_at == used
    assert "Last used at" in html


@pytest.mark.parametrize(
    ("status", "expected"), [("active", {"full", "reader"}), ("revoked", {"revoked"})]
)
def test_filter_active_or_revoked(admin_client, full, reader, revoked, status, expected):
    response = admin_client.get(CHANGELIST, {"status": status})

    assert {key.name for key in response.context["cl"].result_list} == expected


def test_revoke_reports_what_it_revoked_and_what_it_skipped(admin_client, full, reader, revoked):
    first = revoked.revoked_at
    selected = [full[0].pk, reader.pk, revoked.pk]

    response = admin_client.post(
        CHANGELIST, {"action": "revoke", "_selected_action": selected}, follow=True
    )

    assert _messages(response) == ["Revoked 2 key(s); skipped 1 already revoked."]
    assert ApiKey.objects.filter(pk__in=selected, revoked_at__isnull=True).count() == 0
    revoked.refresh_from_db()
    assert revoked.revoked_at == first


def test_revoking_only_revoked_keys_says_so(admin_client, revoked):
    response = admin_client.post(
        CHANGELIST, {"action": "revoke", "_selected_action": [revoked.pk]}, follow=True
    )

    assert _messages(response) == ["Revoked 0 key(s); skipped 1 already revoked."]
    assert [m.level_tag for m in response.context["messages"]] == ["warning"]


def test_staff_who_may_only_view_keys_cannot_revoke(client, full):
    key, secret = full
    user = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_apikey"))
    client.force_login(user)

    page = client.get(CHANGELIST)
    client.post(CHANGELIST, {"action": "revoke", "_selected_action": [key.pk]})

    assert page.status_code == 200
    assert 'value="revoke"' not in page.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert APIClient(HTTP_X_API_KEY=secret).get("/v1/bookings").status_code == 200
