"""Each API request's one trip to the cache: count it against its key's rate limit, and fetch
the key (with its team) as it was cached, so most requests resolve their key without a query.

On Redis (production) both are one Lua script (``EVALSHA``) on a connection kept for the life of
the process, written on the wire (``bookings_project.redis_wire``): one round trip, at half
redis-py's CPU. On any other cache (local memory: development, most tests) the
same happens through Django's cache API.

What is cached, and how a change reaches every process:

- the key's row and its team's, under ``apikey:<sha256>``, for ``KEY_CACHE_SECONDS``;
- after a change to a key commits (a revocation, an edit, a deletion, its team's deletion),
  ``api_keys_recache`` rewrites the entries from the database (unconditionally; a deleted key
  as "gone"), while an entry written after a cache miss is written only where there is none
  (``SET NX``). So a read that raced with a revocation can never put the old row back: a
  revoked or deleted key is refused by every process as soon as the change commits. Only a
  change made behind the services' back (SQL, a shell's ``QuerySet.update``), or one whose
  rewrite found the cache down, waits for the entry to expire: at most ``KEY_CACHE_SECONDS``;
  so does a change to the team's own row (a rename), which requests do not depend on.
- ``touched:<sha256>``: set for a minute by the first request of the minute, which then records
  ``ApiKey.last_used_at`` (one conditional UPDATE a minute per key, whichever process).
- ``replay:<team>:<sha256 of an Idempotency-Key>``: a completed keyed request's stored
  response, written when a replay first reads it from the database (``replay_remember``) and
  fetched in the same round trip by the team's later POSTs with that key, so a retried request
  is answered without a query. Exact: a key's stored response never changes, and its row is
  removed before it expires only with its team (whose API keys are then refused first). The
  entry lives ``REPLAY_CACHE_SECONDS`` at most and never past the row's expiry, so a row deleted
  behind the services' back (SQL) replays from the cache for 5 minutes at most.

When the cache is down, requests go on without it (the limit is not enforced, keys are read
from the database), and each process leaves it alone for a pause after each failure (1 s,
doubling up to 10 s: ``bookings_project.outage``): an outage costs a request nothing, not a
connect attempt or a timeout each, and is logged once when it starts, once a minute while it
lasts and once when it ends.
"""

import hashlib
import logging
import pickle
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache as memoize

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from bookings_project import redis_wire
from bookings_project.api.ratelimit import WINDOW_SECONDS, RateLimitState
from bookings_project.outage import Outage

from .models import ApiKey

logger = logging.getLogger(__name__)

KEY_CACHE_SECONDS = 30
TOUCH_SECONDS = 60
REPLAY_CACHE_SECONDS = 300
_VERSION = 2  # bump when the cached row's shape changes: old entries are then never read
_REPLAY_PREFIX = f"replay:{_VERSION}:"
GONE = "gone"  # the entry of a deleted key
_GONE_BYTES = GONE.encode()
# After the cache fails, how long each process serves requests without trying it again:
# 1 s, doubling while it stays down, at most 10 s (the longest the rate limit stays off once
# Redis is back).
CACHE_RETRY_SECONDS = 1.0
CACHE_MAX_RETRY_SECONDS = 10.0
# Connecting to Redis and each reply: a hung server costs a request this, once.
REDIS_TIMEOUT = 0.5

# KEYS: the window's counter, the key's entry, the key's touch mark. ARGV: the counter's and
# the mark's lifetimes, then (a POST with an Idempotency-Key) the replay prefix and the key.
# The key's entry starts with its team's id and a newline, which names the team's replay.
# Returns: the count, the entry (or nil), 1 when this request is the minute's first, the
# replay (or nil).
_SCRIPT = """
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local touch = redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[2])
local entry = redis.call('GET', KEYS[2])
local replay = false
if ARGV[3] and entry then
  local cut = string.find(entry, '\\n', 1, true)
  if cut then
    replay = redis.call('GET', ARGV[3] .. string.sub(entry, 1, cut - 1) .. ':' .. ARGV[4])
  end
end
return {used, entry, touch and 1 or 0, replay}
"""


@dataclass(frozen=True)
class Admission:
    """What the cache said about one request's key."""

    rate_limit: RateLimitState
    key: ApiKey | str | None  # the cached row, GONE, or None: not cached (look it up)
    touch: bool  # the minute's first request: record last_used_at
    replay: bytes | None = None  # the cached response of the request's Idempotency-Key


def _key_digest(idempotency_key: str) -> str:
    # Bounded, and safe in any cache's key (memcached's rules included).
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def replay_name(team_id: str, idempotency_key: str) -> str:
    return f"{_REPLAY_PREFIX}{team_id}:{_key_digest(idempotency_key)}"


def _entry_name(key_hash: str) -> str:
    return f"apikey:{_VERSION}:{key_hash}"


def _redis_location() -> str | None:
    config = settings.CACHES["default"]
    if config["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
        return None
    location = config["LOCATION"]
    servers = location if isinstance(location, list | tuple) else location.split(",")
    return servers[0]  # Django's RedisCache writes to the first server


@memoize
def _outage(location: str) -> Outage:
    # One per cache location: a test's unreachable cache says nothing about the real one.
    return Outage(
        logger,
        "Cache",
        consequence="rate limit not enforced, API keys read from the database",
        retry_seconds=CACHE_RETRY_SECONDS,
        max_retry_seconds=CACHE_MAX_RETRY_SECONDS,
    )


@memoize
def _redis_script(location: str):
    """A client and its registered script per process (redis-py's pool survives a fork by
    starting a new one in the child)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One immediate retry on a broken connection: a pooled one left over from before a Redis
    # restart fails once and is replaced. None on a timeout (a hung server would cost two),
    # and not redis-py's default (10 retries with back-off, seconds in all).
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    client = redis.Redis.from_url(
        location, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT, retry=retry
    )
    return client, client.register_script(_SCRIPT)


@memoize
def _admission_script(location: str):
    """The admission's script: spoken on the wire (``bookings_project.redis_wire``) for a
    plain redis:// URL, else through redis-py's client. The same timeouts and retry."""
    if redis_wire.supports(location):
        return redis_wire.WireScript(
            location, _SCRIPT, connect_timeout=REDIS_TIMEOUT, timeout=REDIS_TIMEOUT
        )
    return _redis_script(location)[1]


def request_admit(
    key_hash: str, *, replay_key: str | None = None, now: float | None = None
) -> Admission:
    """Count one request of this key and fetch its cached row (and, given ``replay_key``, the
    cached response of that Idempotency-Key for the key's team). The cache being unreachable
    lets the request through (logged): not enforcing the limit beats refusing everyone."""
    now = time.time() if now is None else now
    limit = settings.API_RATE_LIMIT
    window = int(now // WINDOW_SECONDS)
    reset = (window + 1) * WINDOW_SECONDS
    counter, entry, touched = (
        f"ratelimit:{key_hash}:{window}",
        _entry_name(key_hash),
        f"touched:{key_hash}",
    )
    location = _redis_location()
    outage = _outage(location or "")
    if outage.skip():
        outage.missed()
        return _unenforced(limit, reset)
    try:
        if location is not None:
            script = _admission_script(location)
            args = [WINDOW_SECONDS + 5, TOUCH_SECONDS]
            if replay_key is not None:
                args += [_REPLAY_PREFIX, _key_digest(replay_key)]
            used, blob, touch, replay = script(keys=[counter, entry, touched], args=args)
        else:
            used = _incr(counter)
            blob = cache.get(entry)
            touch = cache.add(touched, 1, timeout=TOUCH_SECONDS)
            replay = None
            if replay_key is not None and isinstance(blob, ApiKey):
                replay = cache.get(replay_name(blob.team_id, replay_key))
    except Exception as exc:
        outage.failed(exc)
        outage.missed()
        return _unenforced(limit, reset)
    outage.succeeded()
    state = RateLimitState(
        limit=limit, remaining=max(0, limit - used), reset=reset, exceeded=used > limit
    )
    return Admission(rate_limit=state, key=_load(blob), touch=bool(touch), replay=replay)


def _unenforced(limit: int, reset: int) -> Admission:
    state = RateLimitState(limit=limit, remaining=limit, reset=reset, exceeded=False)
    return Admission(rate_limit=state, key=None, touch=False)


def _incr(counter: str) -> int:
    if cache.add(counter, 1, timeout=WINDOW_SECONDS + 5):
        return 1
    try:
        return cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.set(counter, 1, timeout=WINDOW_SECONDS + 5)
        return 1


# The rows this process unpickled last, by the exact bytes of their entry: an entry rewritten
# (a revocation, an edit) is new bytes, so this can never answer an old row. A row is shared
# by the requests that read the same entry, and read only (``api_key_touch`` sets its
# ``last_used_at``, which is true for all of them).
_LOADED: dict[bytes, ApiKey] = {}
_LOADED_MAX = 256


def _load(blob) -> ApiKey | str | None:
    if blob == _GONE_BYTES:
        return GONE
    if isinstance(blob, bytes):  # raw from the script; Django's cache unpickles itself
        key = _LOADED.get(blob)
        if key is None:
            # "<team id>\n<pickled row>" (the script reads the team's id)
            key = pickle.loads(blob[blob.index(b"\n") + 1 :])  # noqa: S301 (ours: _dump)
            if len(_LOADED) >= _LOADED_MAX:
                _LOADED.clear()
            _LOADED[blob] = key
        return key
    return blob


def _dump(key: ApiKey | None) -> bytes:
    if key is None:
        return _GONE_BYTES
    return f"{key.team_id}\n".encode() + pickle.dumps(key, protocol=pickle.HIGHEST_PROTOCOL)


def replay_remember(team_id: str, idempotency_key: str, stored: bytes, seconds: float) -> None:
    """Cache a keyed request's stored response (read from the database for a replay) where the
    team's next request with that key finds it in its admission's round trip. Only where
    there is none: any entry there holds the same bytes, as a stored response never changes."""
    name = replay_name(team_id, idempotency_key)
    _write([(name, stored, stored)], seconds, only_if_absent=True)


def _key_entries(rows: list[tuple[str, ApiKey | None]]) -> list[tuple[str, bytes, object]]:
    return [
        (_entry_name(key_hash), _dump(key), GONE if key is None else key) for key_hash, key in rows
    ]


def api_key_cache(key: ApiKey) -> None:
    """After a miss: cache the row just read, unless an entry is there already (which may be
    a newer change's: never overwrite it with what may be an older read)."""
    _write(_key_entries([(key.key_hash, key)]), KEY_CACHE_SECONDS, only_if_absent=True)


def api_keys_recache(key_hashes: Iterable[str]) -> None:
    """After a change commits: overwrite the keys' entries with their rows as they are now
    (a key deleted meanwhile as GONE)."""
    key_hashes = list(key_hashes)
    if not key_hashes:
        return
    rows = ApiKey.objects.select_related("team").filter(key_hash__in=key_hashes)
    current = {key.key_hash: key for key in rows}
    entries = _key_entries([(key_hash, current.get(key_hash)) for key_hash in key_hashes])
    failure = _write(entries, KEY_CACHE_SECONDS, only_if_absent=False)
    if failure is not None:  # a change (a revocation) that other processes will not see
        logger.warning(
            "Could not rewrite %s API key(s) in the cache (%s): other processes keep "
            "their entries for up to %ss",
            len(entries),
            type(failure).__name__,
            KEY_CACHE_SECONDS,
        )


def api_keys_recache_on_commit(key_hashes: Iterable[str]) -> None:
    key_hashes = list(key_hashes)
    transaction.on_commit(lambda: api_keys_recache(key_hashes))


def _api_key_changed(sender, instance: ApiKey, **kwargs) -> None:
    # A row saved or deleted through the ORM (the admin's edit and delete, a team's deletion
    # cascading to its keys); a revocation's bulk UPDATE calls the same from its service.
    api_keys_recache_on_commit([instance.key_hash])


def connect_signals() -> None:
    from django.db.models.signals import post_delete, post_save

    post_save.connect(_api_key_changed, sender=ApiKey, dispatch_uid="api_key_recache_save")
    post_delete.connect(_api_key_changed, sender=ApiKey, dispatch_uid="api_key_recache_delete")


def _write(
    entries: list[tuple[str, bytes, object]], seconds: float, *, only_if_absent: bool
) -> Exception | None:
    """Write ``(name, bytes for Redis, value for Django's cache)`` entries for ``seconds``:
    with ``only_if_absent``, a request's best-effort write after a miss (skipped while the
    cache is down, never over an entry already there). Returns the cache's failure, if any."""
    location = _redis_location()
    outage = _outage(location or "")
    if only_if_absent and outage.skip():
        return None  # the next request reads the database
    try:
        if location is not None:
            client, _script = _redis_script(location)
            with client.pipeline(transaction=False) as pipe:
                for name, raw, _value in entries:
                    pipe.set(name, raw, px=max(1, int(seconds * 1000)), nx=only_if_absent)
                pipe.execute()
        else:
            write = cache.add if only_if_absent else cache.set
            for name, _raw, value in entries:
                write(name, value, timeout=seconds)
    except Exception as exc:
        outage.failed(exc)
        return exc
    outage.succeeded()
    return None
