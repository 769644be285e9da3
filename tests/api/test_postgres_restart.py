"""PostgreSQL restarted under load (issue 11, item 4).

gunicorn with the production configuration (``gunicorn_conf.py``, two sync workers,
persistent connections with health checks) serves a private PostgreSQL cluster while client
threads keep creating, reading and listing bookings. The cluster is stopped (``-m fast``: the
server disconnects every client; then ``-m immediate``: a crash), left down for a few
seconds, and started again. Every response is counted:

- during the outage every answer is 503 ``service_unavailable`` in the envelope with
  ``Retry-After``, quickly: never a 500, never HTML, never a hang; so are ``/readyz``
  (naming the database), a key the cache has not seen (authentication reads the database)
  and the admin (a plain page);
- once the database accepts connections again, every request succeeds, in the same gunicorn
  workers (none restarted);
- no booking is lost or half-written: every 201 is in the database with its history entry,
  its email and its idempotency key; a create answered 503 either left nothing (a retry with
  its ``Idempotency-Key`` creates it) or was committed (the retry replays it).
"""

import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import redis
import requests

from ..notifications.live import BIN, ROOT, free_port, log, start, stop, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CONNECT_TIMEOUT = 3  # DATABASE_CONNECT_TIMEOUT given to the server
RETRY_AFTER = "5"  # errors.DATABASE_UNAVAILABLE_RETRY_AFTER
# No response may take longer, outage or not: a refused connection fails at once, an
# unanswered one after CONNECT_TIMEOUT; the rest is slack for a machine shared with others.
RESPONSE_BOUND = CONNECT_TIMEOUT + 7
ADMIN_PASSWORD = "restart-" + secrets.token_urlsafe(12)
CLIENT_THREADS = 4
# A booking as a create leaves it: its two history entries and its one email.
WHOLE = ("created,routed", 1)


def _process_env(database_url: str, redis_url: str) -> dict:
    """The production configuration of the database (persistent connections, health checks,
    connect timeout), DEBUG off, the cache and broker on our own Redis database number."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CELERY_", "EMAIL_", "DATABASE_", "CACHE_", "GUNICORN_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="bookings_project.settings.local",
        DEBUG="false",
        DATABASE_URL=database_url,
        DATABASE_CONN_MAX_AGE="60",
        DATABASE_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
        CACHE_URL=redis_url,
        CELERY_BROKER_URL=redis_url,  # no worker: the emails stay queued, counted as rows
        EMAIL_URL="memorymail://",
        API_RATE_LIMIT="1000000",
        DEMO_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    return env


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Outcome:
    kind: str  # create, get, list
    started: float
    ended: float
    status: int | None = None  # None: no HTTP answer at all (error says why)
    error: str | None = None
    content_type: str = ""
    retry_after: str | None = None
    body: dict | None = None
    tag: str | None = None  # a create's Idempotency-Key

    @property
    def is_unavailable_envelope(self) -> bool:
        return (
            self.status == 503
            and self.content_type.startswith("application/json")
            and self.retry_after == RETRY_AFTER
            and self.body is not None
            and self.body.get("success") is False
            and self.body["error"]["code"] == "service_unavailable"
        )


@dataclass
class Load:
    """Client threads, each cycling create → get → list until stopped."""

    base_url: str
    secret: str
    event_type_id: str
    booking_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    creates: dict[str, dict] = field(default_factory=dict)  # tag → body
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self._slots = itertools.count()
        # Whole half hours from three days out: each create its own slot, so none is a 409.
        first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self._first_slot = first + timedelta(days=3)

    def request(self, kind: str, method: str, path: str, tag=None, **kwargs) -> Outcome:
        headers = {"Authorization": f"Bearer {self.secret}", **kwargs.pop("headers", {})}
        outcome = Outcome(kind=kind, started=time.monotonic(), ended=0.0, tag=tag)
        try:
            response = requests.request(
                method, self.base_url + path, headers=headers, timeout=(5, 30), **kwargs
            )
        except requests.RequestException as exc:
            outcome.error = repr(exc)
        else:
            outcome.status = response.status_code
            outcome.content_type = response.headers.get("Content-Type", "")
            outcome.retry_after = response.headers.get("Retry-After")
            try:
                outcome.body = response.json()
            except ValueError:
                outcome.body = None
                outcome.error = f"not JSON: {response.text[:300]!r}"
        outcome.ended = time.monotonic()
        self.outcomes.append(outcome)
        return outcome

    def create_body(self, tag: str) -> dict:
        start_time = self._first_slot + timedelta(minutes=30 * next(self._slots))
        return {
            "event_type_id": self.event_type_id,
            "requested_time": start_time.isoformat().replace("+00:00", "Z"),
            "attendee": {"name": f"Load {tag}", "email": f"{tag}@example.com"},
        }

    def create(self, tag: str, body: dict) -> Outcome:
        return self.request(
            "create", "POST", "/v1/bookings", tag=tag, json=body, headers={"Idempotency-Key": tag}
        )

    def run(self, number: int) -> None:
        for step in itertools.count():
            if self.done.is_set():
                return
            kind = ("create", "get", "list")[(number + step) % 3]
            if kind == "create":
                tag = f"load-{number}-{step}"
                self.creates[tag] = body = self.create_body(tag)
                outcome = self.create(tag, body)
            elif kind == "get":
                outcome = self.request("get", "GET", f"/v1/bookings/{self.booking_id}")
            else:
                outcome = self.request("list", "GET", "/v1/bookings?limit=5")
            if outcome.status == 503:
                # Retry soon, as an impatient client would, though not in a tight loop: the
                # outage still sees a request every few milliseconds, and the creates to
                # retry afterwards stay a few hundred.
                time.sleep(0.05)

    def count(self, *, since: float, predicate) -> dict[str, int]:
        counts = {"create": 0, "get": 0, "list": 0}
        for outcome in list(self.outcomes):
            if outcome.started >= since and predicate(outcome):
                counts[outcome.kind] += 1
        return counts


def _start_gunicorn(env: dict, log_dir) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server_env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"}
    args = [str(BIN / "gunicorn"), "-c", "python:bookings_project.gunicorn_conf"]
    server = start([*args, "bookings_project.wsgi"], server_env, log_dir / "gunicorn.log")
    base_url = f"http://127.0.0.1:{port}"

    def up():
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{log(server)}")
        try:
            return requests.get(f"{base_url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(up, timeout=60, what="gunicorn to answer")
    return server, base_url


def _admin_session(base_url: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base_url}/admin/login/", timeout=10).raise_for_status()
    response = session.post(
        f"{base_url}/admin/login/",
        data={
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text[:500]
    assert "sessionid" in session.cookies
    return session


def _outage_checks(base_url: str, admin: requests.Session, unseen_secret: str) -> None:
    """What the rest of the service says while the database is down."""
    started = time.monotonic()
    assert requests.get(f"{base_url}/healthz", timeout=30).status_code == 200  # no I/O: alive
    ready = requests.get(f"{base_url}/readyz", timeout=30)
    assert ready.status_code == 503, ready.text
    assert ready.json()["error"]["code"] == "not_ready"
    assert ready.json()["error"]["details"]["down"] == ["database"]  # cache and broker are up

    # A key no request has used yet is not in the cache: authentication reads the database.
    unseen = requests.get(
        f"{base_url}/v1/event-types", headers={"X-API-Key": unseen_secret}, timeout=30
    )
    assert unseen.status_code == 503, unseen.text
    assert unseen.headers["Retry-After"] == RETRY_AFTER
    assert unseen.json()["error"]["code"] == "service_unavailable"

    page = admin.get(f"{base_url}/admin/bookings/booking/", timeout=30)
    assert page.status_code == 503, page.text[:500]
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Retry-After"] == RETRY_AFTER
    assert "Service unavailable" in page.text
    assert "Traceback" not in page.text
    assert time.monotonic() - started < 3 * RESPONSE_BOUND


def _restart(cluster, load: Load, mode: str, admin, unseen_secret: str, base_url: str) -> dict:
    """One outage under load: stop the cluster, keep the load on until each kind of request
    has been refused a few times, start it again, keep the load on until each kind has
    succeeded a few times. Returns the moments that split the outcomes."""
    marks = {"stop_begin": time.monotonic()}
    cluster.stop(mode)
    marks["stop_end"] = time.monotonic()
    wait_until(
        lambda: (
            min(load.count(since=marks["stop_end"], predicate=lambda o: True).values()) >= 5
            and time.monotonic() - marks["stop_end"] > 2
        ),
        timeout=60,
        what=f"requests during the outage ({mode})",
    )
    _outage_checks(base_url, admin, unseen_secret)
    marks["start_begin"] = time.monotonic()
    cluster.start()
    marks["start_end"] = time.monotonic()
    wait_until(
        lambda: (
            min(
                load.count(
                    since=marks["start_end"], predicate=lambda o: o.status in (200, 201)
                ).values()
            )
            >= 5
        ),
        timeout=60,
        what=f"requests to succeed again after the restart ({mode})",
    )
    assert requests.get(f"{base_url}/readyz", timeout=30).status_code == 200
    assert admin.get(f"{base_url}/admin/bookings/booking/", timeout=30).status_code == 200
    return marks


def test_postgres_restarted_under_load(private_postgres, tmp_path):
    redis_url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/13")
    redis.Redis.from_url(redis_url).flushdb()  # our own database number
    database_url = private_postgres.createdb("bookings")
    env = _process_env(database_url, redis_url)
    _manage(env, "migrate", "--no-input")
    seed = json.loads(_manage(env, "seed_demo", "--json"))
    team, other_team = seed["teams"]
    event_type_id = next(e["id"] for e in team["event_types"] if e["slug"] == "intro-call")

    server, base_url = _start_gunicorn(env, tmp_path)
    try:
        admin = _admin_session(base_url)
        load = Load(base_url, team["api_key"], event_type_id, booking_id="")
        warm_up = load.create("warm-up", load.create_body("warm-up"))
        assert warm_up.status == 201, warm_up.body
        load.creates["warm-up"] = {}
        load.booking_id = warm_up.body["booking"]["id"]

        threads = [
            threading.Thread(target=load.run, args=(number,), daemon=True)
            for number in range(CLIENT_THREADS)
        ]
        for thread in threads:
            thread.start()
        try:
            wait_until(
                lambda: min(load.count(since=0, predicate=lambda o: o.status).values()) >= 5,
                what="the load to run",
            )
            outages = [
                (
                    mode,
                    _restart(private_postgres, load, mode, admin, other_team["api_key"], base_url),
                )
                for mode in ("fast", "immediate")
            ]
        finally:
            load.done.set()
            for thread in threads:
                thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a client thread hangs"

        _check_responses(load, outages)
        _check_bookings(load, database_url, team["id"])
        _restart_while_idle(private_postgres, load, database_url)

        # The same two workers served throughout: none was restarted or timed out.
        assert server.poll() is None
        server_log = log(server)
        assert server_log.count("Booting worker with pid") == 2, server_log
        assert "WORKER TIMEOUT" not in server_log
    finally:
        stop(server)


def _check_responses(load: Load, outages: list[tuple[str, dict]]) -> None:
    outcomes = list(load.outcomes)
    summary = {}
    ends = [marks["stop_begin"] for _mode, marks in outages[1:]] + [float("inf")]
    for (mode, marks), next_stop in zip(outages, ends, strict=True):
        during = [
            o
            for o in outcomes
            if o.started >= marks["stop_end"] and o.ended <= marks["start_begin"]
        ]
        after = [o for o in outcomes if marks["start_end"] <= o.started and o.ended < next_stop]
        in_flight = [
            o for o in outcomes if o.started < marks["stop_end"] and o.ended > marks["stop_begin"]
        ]
        first_success = min(o.ended for o in after if o.status in (200, 201))
        summary[mode] = {
            "during": len(during),
            "in_flight": sorted({o.status for o in in_flight}, key=str),
            "recovered_in": round(first_success - marks["start_end"], 2),
            "outage_s": round(marks["start_begin"] - marks["stop_end"], 1),
        }
        # Down: every answer is the 503 envelope with Retry-After.
        refused = [o for o in during if not o.is_unavailable_envelope]
        assert not refused, (mode, refused[:5])
        # Back: every request that started after the database did succeeds, first time.
        failed = [o for o in after if o.status not in (200, 201)]
        assert not failed, (mode, failed[:5])

    # Whenever it came, every answer was a success or the 503 envelope: no 500, no HTML, no
    # dropped connection, nothing slower than the bound.
    bad = [o for o in outcomes if o.status not in (200, 201) and not o.is_unavailable_envelope]
    assert not bad, bad[:5]
    slowest = max(o.ended - o.started for o in outcomes)
    assert slowest < RESPONSE_BOUND, slowest
    statuses = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    print(f"\nresponses {statuses}, slowest {slowest:.2f}s, outages {summary}")


def _check_bookings(load: Load, database_url: str, team_id: str) -> None:
    """Every create either made its booking (whole: history, email, key) or nothing; a
    retry with the same Idempotency-Key makes or replays it, never a second one."""
    answered = {}
    for outcome in load.outcomes:
        if outcome.kind == "create":
            answered[outcome.tag] = outcome

    def rows():
        with psycopg.connect(database_url) as conn:
            keys = dict(
                conn.execute(
                    "SELECT key, booking_id FROM bookings_idempotencykey WHERE team_id = %s",
                    [team_id],
                ).fetchall()
            )
            bookings = {
                booking_id: (history, emails)
                for booking_id, history, emails in conn.execute(
                    """SELECT b.id,
                              (SELECT string_agg(h.action, ',' ORDER BY h.action)
                                   FROM bookings_bookinghistory h
                               WHERE h.booking_id = b.id),
                              (SELECT count(*) FROM notifications_emailoutbox e
                               WHERE e.booking_id = b.id)
                       FROM bookings_booking b WHERE b.team_id = %s""",
                    [team_id],
                ).fetchall()
            }
        return keys, bookings

    keys, bookings = rows()
    created = {tag: o.body["booking"]["id"] for tag, o in answered.items() if o.status == 201}
    for tag, booking_id in created.items():
        assert keys.get(tag) == booking_id, tag
    # No booking without its key (every create here sent one), none half-written.
    assert set(bookings) == set(keys.values())
    assert all(rows == WHOLE for rows in bookings.values()), bookings

    # The 503s: committed (the key is there) or not; the retry tells the same.
    refused = [tag for tag, outcome in answered.items() if outcome.status != 201]
    assert all(answered[tag].status == 503 for tag in refused)
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        outcomes = pool.map(lambda tag: load.create(tag, load.creates[tag]), refused)
        retries = dict(zip(refused, outcomes, strict=True))
    replayed = made = 0
    for tag, retry in retries.items():
        if tag in keys:
            assert retry.status == 200, retry
            assert retry.body["idempotent_replay"] is True
            assert retry.body["booking"]["id"] == keys[tag]
            replayed += 1
        else:
            assert retry.status == 201, retry
            made += 1

    keys, bookings = rows()
    assert set(keys) == set(answered)  # one booking per create attempted, none lost
    assert len(bookings) == len(answered)
    assert all(rows == WHOLE for rows in bookings.values()), bookings
    print(
        f"creates {len(answered)}: 503 then made by the retry {made}, 503 but committed {replayed}"
    )


def _restart_while_idle(cluster, load: Load, database_url: str) -> None:
    """The database restarts between two requests: each worker's persistent connection is
    dead but looks open. The health check at the next request's first query notices and
    reconnects (CONN_HEALTH_CHECKS): not even one 503."""

    def sessions() -> int:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()[0]

    def requests_in_parallel(count: int) -> list[Outcome]:
        path = f"/v1/bookings/{load.booking_id}"
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            return list(pool.map(lambda _: load.request("get", "GET", path), range(count)))

    def both_workers_connected() -> bool:
        requests_in_parallel(8)
        return sessions() == 2

    wait_until(both_workers_connected, what="both workers to hold a connection")
    cluster.stop("fast")
    cluster.start()
    outcomes = requests_in_parallel(12)
    assert [o.status for o in outcomes] == [200] * 12, outcomes
    assert sessions() == 2  # the dead connections were replaced, not added to
