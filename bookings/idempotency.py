"""``Idempotency-Key``: a retried create returns the first response, byte for byte.

The key row is written with the booking it produces — a create: in the same statement as the
booking, its history and its email (``idempotent_insert``); a reschedule: in the same
transaction (``idempotent_call``) — so:

- a success commits the key, the booking and its queued email together;
- a failure (any 4xx or 5xx) rolls the key back with everything else: the key stays free;
- a concurrent duplicate blocks on the unique index (team, key) until the first commits, then
  replays it. If the first takes longer than the database's lock timeout, the duplicate gets
  409 ``idempotency_request_in_progress`` with ``Retry-After: 1``.

Keys are scoped per team and live 24 hours from first use. A replay read from the database is
also cached (``bookings.access.replay_remember``): the key's later retries fetch it in their
admission's round trip to Redis, and are answered without a query.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Model
from django.utils import timezone

from .access import REPLAY_CACHE_SECONDS, replay_remember
from .compiled import CompiledQuery
from .db import is_lock_timeout
from .errors import (
    IdempotencyKeyReused,
    IdempotencyRequestInProgress,
    InvalidIdempotencyKey,
    SlotUnavailable,
)
from .models import IdempotencyKey, Team

KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
REPLAY_MARKER = b',"idempotent_replay":true'


@dataclass
class Result:
    """What a create produced (or a replay returns): a status, the exact body bytes, and
    headers. The API sends it as it is."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    booking_id: str | None = None


def idempotency_key_parse(raw: str | None) -> str | None:
    """The header's value, or None when absent. Empty, too long or non-printable: 400."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in raw):
        raise InvalidIdempotencyKey()
    return raw


def request_fingerprint(*, endpoint: str, payload) -> str:
    """Endpoint plus canonical JSON of the body: key order, white space, string escapes and
    how a number is written (``1``, ``1.0``, ``1e0``: one JSON number, as RFC 8785's
    canonical form writes it) do not matter."""
    canonical = json.dumps(
        _numbers_canonical(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


# A replay's one query, compiled once (bookings/compiled.py): the ORM would rebuild it each time.
_key_row = CompiledQuery(
    lambda *, team_id, key: IdempotencyKey.objects.filter(team_id=team_id, key=key).order_by()[:1]
)


def _stored(row: IdempotencyKey) -> bytes:
    """What a replay needs of the row, as cached: fingerprint, location, then the body."""
    head = f"{row.fingerprint}\n{row.response_location}\n".encode()
    return head + bytes(row.response_body)


def _numbers_canonical(value):
    """The payload with every whole number read as a float (``1.0``, ``1e2``) an integer:
    JSON has one number type, and a retry serialised by another library may write it either
    way. Other floats are written by ``json.dumps`` in their shortest form already."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {name: _numbers_canonical(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_numbers_canonical(item) for item in value]
    return value


def _replay(stored: bytes, fingerprint: str) -> Result:
    stored_fingerprint, location, body = stored.split(b"\n", 2)
    if stored_fingerprint != fingerprint.encode():
        raise IdempotencyKeyReused()
    headers = {"Idempotent-Replayed": "true"}
    if location:
        headers["Location"] = location.decode()
    # The original bytes with the marker before the final "}": nothing else changes.
    return Result(status=200, body=body[:-1] + REPLAY_MARKER + body[-1:], headers=headers)


def _replay_of(row: IdempotencyKey, *, team: Team, key: str, now, fingerprint: str) -> Result:
    """The replay of a live key's row, which is also cached for the key's later retries."""
    stored = _stored(row)
    # Cached no longer than the row lives (a second's margin for clocks).
    seconds = min((row.expires_at - now).total_seconds() - 1, REPLAY_CACHE_SECONDS)
    if seconds > 0:
        replay_remember(team.pk, key, stored, seconds)
    return _replay(stored, fingerprint)


def _live_row(*, team: Team, key: str, now) -> tuple[IdempotencyKey | None, bool]:
    """The key's row, if any, and whether it is still live (an expired one: the key is new)."""
    rows = _key_row(team_id=team.pk, key=key)
    row = rows[0] if rows else None
    return row, row is not None and row.expires_at > now


def idempotent_call(
    *,
    team: Team,
    key: str | None,
    endpoint: str,
    payload,
    prepare: Callable[[], Any],
    produce: Callable[[Any], Result],
    cached: bytes | None = None,
) -> Result:
    """Run ``produce`` (which writes) at most once per (team, key), as the contract says.

    ``prepare`` validates the request (reads only). It runs after a stored response has had
    its chance to replay — a retry replays even if the same body would no longer validate —
    and before the write transaction opens, so the transaction stays short. ``cached`` is the
    key's stored response as the request's admission found it in the cache, if it did.
    The key is claimed first, in the transaction ``produce`` then writes in (a reschedule);
    ``idempotent_insert`` writes it with the producer's own rows instead (a create).
    """
    if key is None:  # ``produce``'s service keeps its own writes atomic
        return produce(prepare())

    def claimed_first(now, row, prepared, fingerprint: str) -> Result | None:
        with transaction.atomic():
            claim = _claimed(team=team, key=key, fingerprint=fingerprint, now=now, expired=row)
            if claim is None:
                return None  # another request with this key committed while we waited
            result = produce(prepared)
            claim.response_status = result.status
            claim.response_body = result.body
            claim.response_location = result.headers.get("Location", "")
            claim.booking_id = result.booking_id
            claim.save(
                update_fields=["response_status", "response_body", "response_location", "booking"]
            )
            return result

    return _once_per_key(
        team=team,
        key=key,
        endpoint=endpoint,
        payload=payload,
        prepare=prepare,
        cached=cached,
        attempt=claimed_first,
    )


def idempotent_insert(
    *,
    team: Team,
    key: str | None,
    endpoint: str,
    payload,
    prepare: Callable[[], Any],
    produce: Callable[[Any, Callable[[Result], list[Model]]], Result],
    cached: bytes | None = None,
) -> Result:
    """``idempotent_call`` for a producer that writes the key's row itself, with its own rows
    and all or nothing (a create: one statement on PostgreSQL, where claiming the key first
    took a transaction and eight more round trips).

    ``produce(prepared, key_rows)`` calls ``key_rows(result)`` for the rows to write with its
    own — the key holding ``result``, or none without a key — once it knows the response
    (each time it tries again, say with another host). The key's unique index decides between
    concurrent requests with one key: the first to commit writes its rows, any other's
    statement fails whole on the index (after waiting for the first to finish) and replays
    the first's response. A request that found no free host may have lost it to such a first
    request: it replays that one, once committed (``_key_in_use``). Waiting on a first request
    still running past the lock timeout: 409 ``idempotency_request_in_progress``, as
    ``idempotent_call``.
    """
    if key is None:
        return produce(prepare(), lambda _result: [])

    def written_with(now, row, prepared, fingerprint: str) -> Result | None:
        if row is not None:  # expired: the key is new again
            IdempotencyKey.objects.filter(pk=row.pk, expires_at__lte=now).delete()

        def key_rows(result: Result) -> list[Model]:
            return [
                IdempotencyKey(
                    team=team,
                    key=key,
                    fingerprint=fingerprint,
                    response_status=result.status,
                    response_body=result.body,
                    response_location=result.headers.get("Location", ""),
                    booking_id=result.booking_id,
                    created_at=now,
                    expires_at=now + KEY_TTL,
                )
            ]

        try:
            return produce(prepared, key_rows)
        except IntegrityError as exc:
            if not _is_key_taken(exc):
                raise
            return None  # another request with this key committed first
        except OperationalError as exc:
            if is_lock_timeout(exc):  # the first request is still running
                raise IdempotencyRequestInProgress() from None
            raise
        except SlotUnavailable:
            # Perhaps lost to a request with this key, committed meanwhile (replay it) or
            # still writing (past the lock timeout on its booking: 409 in progress).
            if _key_in_use(team=team, key=key, now=now, fingerprint=fingerprint):
                return None
            raise

    return _once_per_key(
        team=team,
        key=key,
        endpoint=endpoint,
        payload=payload,
        prepare=prepare,
        cached=cached,
        attempt=written_with,
    )


def _once_per_key(
    *,
    team: Team,
    key: str,
    endpoint: str,
    payload,
    prepare: Callable[[], Any],
    cached: bytes | None,
    attempt: Callable[..., Result | None],
) -> Result:
    """What both ways share: replay a live key's stored response (``cached``, or its row);
    otherwise validate and ``attempt(now, expired row or None, prepared, fingerprint)`` the
    write, which returns None when another request with the key got there first: its
    response is then replayed (a few times at most, then 409 in progress)."""
    fingerprint = request_fingerprint(endpoint=endpoint, payload=payload)
    if cached is not None:
        return _replay(cached, fingerprint)
    for _ in range(3):
        now = timezone.now()
        row, live = _live_row(team=team, key=key, now=now)
        if live:
            return _replay_of(row, team=team, key=key, now=now, fingerprint=fingerprint)
        result = attempt(now, row, prepare(), fingerprint)
        if result is not None:
            return result
    raise IdempotencyRequestInProgress()


def _claimed(
    *, team: Team, key: str, fingerprint: str, now, expired: IdempotencyKey | None = None
) -> IdempotencyKey | None:
    """The key's row, without a response yet, inserted under a savepoint (after deleting the
    expired row it replaces, if any); None when another request committed the key first. The
    insert waits for a request still writing the key: past the lock timeout, 409 in progress."""
    try:
        with transaction.atomic():
            if expired is not None:  # the key is new again
                IdempotencyKey.objects.filter(pk=expired.pk).delete()
            return IdempotencyKey.objects.create(
                team=team,
                key=key,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=now + KEY_TTL,
            )
    except IntegrityError:
        return None
    except OperationalError as exc:
        if is_lock_timeout(exc):  # the other request is still running
            raise IdempotencyRequestInProgress() from None
        raise


def _key_in_use(*, team: Team, key: str, now, fingerprint: str) -> bool:
    """Whether another request has the key: a committed row, or one being written (which a
    claim of the key waits for; past the lock timeout, 409 in progress). The claim tried here
    is rolled back, whatever it finds."""
    if _live_row(team=team, key=key, now=now)[1]:
        return True
    with transaction.atomic():
        claim = _claimed(team=team, key=key, fingerprint=fingerprint, now=now)
        transaction.set_rollback(True)
    return claim is None


_KEY_CONSTRAINT = "idempotency_key_unique_per_team"


def _is_key_taken(exc: IntegrityError) -> bool:
    """The key's unique index refused the row: PostgreSQL names the constraint, SQLite the
    table and its columns."""
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:
        return getattr(diag, "constraint_name", None) == _KEY_CONSTRAINT
    return f"{IdempotencyKey._meta.db_table}.team_id, " in str(exc)


def idempotency_keys_purge(*, batch_size: int = 5000) -> int:
    """Delete expired keys, in batches so no statement locks the table for long."""
    deleted = 0
    while True:
        ids = list(
            IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).values_list(
                "pk", flat=True
            )[:batch_size]
        )
        if not ids:
            return deleted
        deleted += IdempotencyKey.objects.filter(pk__in=ids).delete()[0]
