"""API-key authentication and scopes.

A key is ``sk_live_…`` or ``sk_test_…`` followed by 256 random bits. Only its SHA-256 is
stored; the secret is shown once, when the key is created.
"""

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from .access import GONE, api_key_cache, request_admit
from .errors import InvalidIdempotencyKey
from .idempotency import idempotency_key_parse
from .models import ApiKey, Team

ALL_SCOPES: tuple[str, ...] = tuple(ApiKey.Scope.values)
# ``ApiKey.last_used_at`` is written at most once per this span per key: a busy key costs one
# UPDATE a minute, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiClient:
    """``request.user`` for API requests: the team a key acts for."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False

    @property
    def team(self) -> Team:
        return self.api_key.team

    @property
    def team_id(self) -> str:
        return self.api_key.team_id


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

    One trip to the cache counts the request against the key's rate limit (the view then
    refuses it when over, see ``RateLimitedMixin``) and usually brings the key and its team
    (see ``access.py``); only a miss reads the database.
    """

    def authenticate(self, request):
        secret = self._secret(request)
        if secret is None:
            return None
        key_hash = hash_key(secret)
        replay_key = None
        if request.method == "POST":  # a retry's stored response comes in the same round trip
            with contextlib.suppress(InvalidIdempotencyKey):  # 400 from the view, later
                replay_key = idempotency_key_parse(request.META.get("HTTP_IDEMPOTENCY_KEY"))
        admission = request_admit(key_hash, replay_key=replay_key)
        key = admission.key
        if key is None:
            key = ApiKey.objects.select_related("team").filter(key_hash=key_hash).first()
            if key is not None:
                api_key_cache(key)
        if key is None or key == GONE:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.is_revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        request.rate_limit = admission.rate_limit
        request.cached_replay = admission.replay
        if admission.touch:
            api_key_touch(key)
        return ApiClient(api_key=key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _secret(request) -> str | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        other = request.META.get("HTTP_X_API_KEY", "").strip()
        if not header:
            return other or None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise exceptions.AuthenticationFailed(
                "Use 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
            )
        if other and other != value:
            # Two different keys, perhaps of two teams: acting as either could be wrong.
            raise exceptions.AuthenticationFailed(
                "Send one key: 'Authorization' and 'X-API-Key' carry different ones."
            )
        return value


def api_key_touch(key: ApiKey) -> None:
    """Record that ``key`` was just used, unless that was recorded under a minute ago.

    The check on the row read for authentication costs nothing; the UPDATE repeats it, so
    concurrent requests write once, and a key revoked meanwhile is left alone.
    """
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if key.last_used_at is not None and key.last_used_at >= stale:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale),
        pk=key.pk,
        revoked_at__isnull=True,
    ).update(last_used_at=now)
    key.last_used_at = now


class HasScope(permissions.BasePermission):
    """The view names the scope each action (a viewset) or method (a plain view) needs in
    ``required_scopes``. A view that names none needs no key at all (the schema, health).
    """

    message = "This API key lacks the scope this request needs."

    def has_permission(self, request, view) -> bool:
        required = getattr(view, "required_scopes", {})
        if not required:
            return True
        if not isinstance(request.user, ApiClient):
            raise exceptions.NotAuthenticated("An API key is required.")
        action = getattr(view, "action", None)
        scope = required.get(action) if action else required.get(request.method)
        if scope is None and request.method == "HEAD":
            scope = required.get("GET")
        if scope is None:
            return True  # a method the view does not answer: it says 405 itself
        if scope not in request.auth.scopes:
            self.message = f"This API key lacks the '{scope}' scope."
            return False
        return True
