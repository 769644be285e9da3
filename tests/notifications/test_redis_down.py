"""Redis down, end to end: one private redis-server is both the cache and the broker of a
gunicorn (production's configuration, two workers) and a Celery worker; emails go to an SMTP
sink. The test shuts that Redis down, drives the API through real HTTP, brings Redis back
empty, and counts what the attendees receive.
"""

import contextlib
import shutil
import time
from pathlib import Path

import pytest
import redis
import requests

from bookings.services import api_key_create
from notifications.emails import SUBJECTS
from notifications.models import EmailOutbox

from ..bookings.create_helpers import create_body, in_days
from .live import free_port, log, relay_run, start, stop, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LIMIT = 10  # requests per key per minute: the outage phase alone sends more than this
BOUND = 5.0  # seconds: no request may take longer while Redis is down (they take milliseconds)
WORKERS = 2


class PrivateRedis:
    """A redis-server of our own on a free port, keeping nothing on disk: stopped and started
    again on the same port, it comes back empty."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process = None
        self.starts = 0

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=2)

    def start(self) -> None:
        self.starts += 1
        args = [shutil.which("redis-server") or "redis-server", "--port", str(self.port)]
        args += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.directory)]
        self.process = start(args, {}, self.directory / f"redis-{self.starts}.log")

        def up():
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited:\n{log(self.process)}")
            try:
                return self.client().ping()
            except redis.ConnectionError:
                return False

        wait_until(up, timeout=10, what="redis-server to answer")

    def shutdown(self) -> None:
        # It closes the connection on its way out: no reply to read.
        with contextlib.suppress(redis.ConnectionError):
            self.client().shutdown(nosave=True)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)


@pytest.fixture
def redis_server(tmp_path):
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def email_url(sink):
    return sink.url


@pytest.fixture
def process_env(process_env, redis_server):
    # The relay's grace at 0: a row left pending is relayed at once, not a minute later.
    return {
        **process_env,
        "CACHE_URL": redis_server.url(1),
        "API_RATE_LIMIT": str(LIMIT),
        "EMAIL_RELAY_GRACE_SECONDS": "0",
    }


class Api:
    """Real HTTP to the server, every request timed."""

    def __init__(self, base_url: str, secret: str):
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.timings: list[tuple[str, str, int, float]] = []

    def __call__(self, method: str, path: str, *, key: str | None = None, **kwargs):
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        started = time.monotonic()
        response = requests.request(
            method, self.base_url + path, headers=headers, timeout=30, **kwargs
        )
        elapsed = time.monotonic() - started
        self.timings.append((method, path, response.status_code, elapsed))
        assert elapsed < BOUND, f"{method} {path} took {elapsed:.2f}s"
        if path != "/readyz":  # the one path whose 503 is its answer
            assert response.status_code < 500, response.text
        return response


def _remaining(response) -> int:
    return int(response.headers["X-RateLimit-Remaining"])


def test_redis_down_the_api_answers_and_every_email_is_sent_once_when_it_returns(
    team, event_type, redis_server, sink, process_env, process_logs, start_server, start_worker
):
    _, secret = api_key_create(team=team)
    broker = redis_server.url(0)
    api = Api(start_server(broker, workers=WORKERS), secret)
    worker = start_worker(broker)  # ready
    assert api("GET", "/readyz").status_code == 200

    def create(hour: int, *, key: str | None = None) -> str:
        body = create_body(event_type, in_days(2, hour=hour))
        body["attendee"]["email"] = f"attendee-{hour}@example.com"
        response = api("POST", "/v1/bookings", json=body, key=key)
        assert response.status_code == 201, response.text
        return response.json()["booking"]["id"]

    # Healthy first: sent at once by the worker, counted by the rate limit.
    before = create(8)
    wait_until(
        lambda: EmailOutbox.objects.filter(booking_id=before, status="sent").exists(),
        what="the first email to be sent",
    )
    assert len(sink.messages) == 1
    assert _remaining(api("GET", "/v1/bookings")) < LIMIT

    redis_server.shutdown()
    outage_started = len(api.timings)

    # Creates, with and without Idempotency-Key (its table is in PostgreSQL), and a replay.
    plain = [create(9), create(10), create(13)]
    keyed = [create(11, key="down-11"), create(12, key="down-12"), create(14, key="down-14")]
    replay_body = create_body(event_type, in_days(2, hour=11))
    replay_body["attendee"]["email"] = "attendee-11@example.com"
    replay = api("POST", "/v1/bookings", json=replay_body, key="down-11")
    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["booking"]["id"] == keyed[0]

    # Reads.
    for booking_id in [before, *plain, *keyed]:
        assert api("GET", f"/v1/bookings/{booking_id}").status_code == 200
    listed = api("GET", "/v1/bookings?limit=100")
    assert listed.status_code == 200
    assert {b["id"] for b in listed.json()["bookings"]} >= {before, *plain, *keyed}

    # The lifecycle: a cancellation, and a reschedule (its Idempotency-Key in PostgreSQL too).
    cancelled = plain[2]
    response = api("POST", f"/v1/bookings/{cancelled}/cancel", json={"reason": "Redis is down"})
    assert response.status_code == 200, response.text
    assert response.json()["booking"]["status"] == "CANCELLED"
    moved = keyed[2]
    response = api(
        "POST",
        f"/v1/bookings/{moved}/reschedule",
        json={"requested_time": create_body(event_type, in_days(2, hour=16))["requested_time"]},
        key="move-14",
    )
    assert response.status_code == 201, response.text
    moved_to = response.json()["booking"]["id"]

    # The rate limit fails open: more requests than the limit, none refused, none counted.
    outage = api.timings[outage_started:]
    assert len(outage) > LIMIT
    assert all(status in (200, 201) for _, _, status, _ in outage)

    # Readiness names what is down, in the envelope, and answers at once.
    ready = api("GET", "/readyz")
    assert ready.status_code == 503
    assert ready.json()["success"] is False
    error = ready.json()["error"]
    assert error["code"] == "not_ready"
    assert error["details"]["down"] == ["cache", "broker"]

    # Nothing queued while it was down went out yet; nothing was lost either: the rows wait.
    assert len(sink.messages) == 1
    assert EmailOutbox.objects.filter(status="pending").count() == 6  # 5 + the moved-to one

    # Logged, once per process and outage, without a traceback per request.
    server_log_text = _server_log(process_logs)
    cache_down = server_log_text.count("Cache unreachable (ConnectionError")
    assert 1 <= cache_down <= WORKERS, server_log_text
    assert "rate limit not enforced" in server_log_text
    assert 1 <= server_log_text.count("Broker unreachable (") <= WORKERS, server_log_text
    assert "Traceback" not in server_log_text, server_log_text

    # Redis returns, empty.
    redis_server.start()

    wait_until(
        lambda: api("GET", "/readyz").status_code == 200, timeout=10, what="/readyz to be 200"
    )
    # The rate limit counts again (the long-lived client in access.py reconnected, and loaded
    # its script into the new server): within the limit, then 429.
    statuses = []

    def refused():
        response = api("GET", "/v1/bookings?limit=1")
        statuses.append((response.status_code, _remaining(response)))
        return response.status_code == 429

    wait_until(refused, timeout=20, what="the rate limit to refuse a request")
    counted = [remaining for status, remaining in statuses if status == 200]
    assert min(counted) < LIMIT - 1, statuses
    assert _server_log(process_logs).count("Cache reachable again") >= 1

    # The worker reconnects by itself; the relay enqueues every pending row, each sent once.
    wait_until(
        lambda: log(worker).count("Connected to redis://") >= 2,
        timeout=40,
        what="the worker to reconnect",
    )
    relay_run({**process_env, "CELERY_BROKER_URL": broker})
    wait_until(
        lambda: not EmailOutbox.objects.filter(status="pending").exists(),
        what="the relayed emails to be sent",
    )
    stop(worker)  # after this nothing more can arrive: the counts below are final

    kinds = dict(EmailOutbox.objects.filter(status="sent").values_list("booking_id", "kind"))
    expected = {
        before: "confirmation",
        plain[0]: "confirmation",
        plain[1]: "confirmation",
        cancelled: "cancellation",  # its confirmation superseded while still pending
        keyed[0]: "confirmation",
        keyed[1]: "confirmation",
        moved_to: "confirmation",  # the moved booking's own confirmation superseded
    }
    assert kinds == expected
    assert set(EmailOutbox.objects.values_list("status", flat=True)) == {"sent", "superseded"}
    received = {}
    for message in sink.messages:
        received.setdefault(message.message["X-Booking-Id"], []).append(message.subject)
    assert received == {
        booking_id: [SUBJECTS[kind].format(name=event_type.name)]
        for booking_id, kind in expected.items()
    }

    # Relayed outside any request: the worker's lines for them carry no request id.
    worker_log = log(worker)
    for row in EmailOutbox.objects.filter(status="sent").exclude(booking_id=before):
        assert f" INFO notifications.services [-] Sent email {row.pk} " in worker_log, worker_log

    slowest = max(elapsed for *_, elapsed in outage)
    print(f"slowest of {len(outage)} requests while Redis was down: {slowest * 1000:.0f} ms")


def _server_log(process_logs: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in process_logs.glob("gunicorn-*"))
