"""End to end with the real parts: gunicorn serving the API, Redis as the broker, a Celery
worker sending the email, PostgreSQL holding the outbox. Everything runs as its own process
against the test database, as in production.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from django.db import connection

from bookings.services import api_key_create
from notifications.models import EmailOutbox

from ..bookings.create_helpers import create_body, in_days

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def broker_url():
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/13")
    redis.Redis.from_url(url).flushdb()  # our own database number: stale messages out
    return url


@pytest.fixture
def mail_dir(tmp_path):
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def process_env(mail_dir):
    """The environment of a production-like process on the test database."""
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "EMAIL_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bookings_project.settings.local",
        DEBUG="false",
        DATABASE_URL=database_url,
        DATABASE_CONN_MAX_AGE="0",
        EMAIL_URL=f"filemail:///{mail_dir}",  # four slashes: an absolute path
    )
    return env


def _start(args, env) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def start_server(process_env):
    started = []

    def start(broker: str) -> str:
        port = _free_port()
        env = {**process_env, "CELERY_BROKER_URL": broker}
        server = _start(
            [
                str(BIN / "gunicorn"),
                "bookings_project.wsgi:application",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "1",
                "--log-level",
                "warning",
            ],
            env,
        )
        started.append(server)

        def up():
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=0.2).close() or True
            except OSError:
                return server.poll() is not None and pytest.fail(server.stderr.read().decode())

        _wait(up, what="gunicorn to listen")
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        _stop(process)


@pytest.fixture
def start_worker(process_env):
    started = []

    def start(broker: str) -> subprocess.Popen:
        env = {**process_env, "CELERY_BROKER_URL": broker}
        worker = _start(
            [
                str(BIN / "celery"),
                "-A",
                "bookings_project",
                "worker",
                "--pool=solo",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            env,
        )
        started.append(worker)
        return worker

    yield start
    for process in started:
        _stop(process)


def _post(
    base_url: str, secret: str, body: dict, key: str | None = None, request_id: str | None = None
):
    headers = {"Authorization": f"Bearer {secret}"}
    if key:
        headers["Idempotency-Key"] = key
    if request_id:
        headers["X-Request-Id"] = request_id
    return requests.post(f"{base_url}/v1/bookings", json=body, headers=headers, timeout=30)


def test_worker_sends_the_confirmation_once(
    team, event_type, broker_url, mail_dir, start_server, start_worker
):
    _, secret = api_key_create(team=team)
    base_url = start_server(broker_url)
    worker = start_worker(broker_url)
    body = create_body(event_type, in_days(2))

    response = _post(base_url, secret, body, key="worker-once", request_id="trace-worker-1")
    assert response.status_code == 201, response.text
    booking_id = response.json()["booking"]["id"]

    row = _wait(
        lambda: EmailOutbox.objects.filter(booking_id=booking_id, status="sent").first(),
        what="the worker to send the email",
    )
    assert (row.kind, row.attempts, row.to_email) == ("confirmation", 1, "ada@example.com")
    files = _wait(lambda: list(mail_dir.iterdir()), what="the email file")
    message = files[0].read_text()
    assert "To: ada@example.com" in message
    assert "METHOD:REQUEST" in message

    # A replay queues nothing: still one row, one email.
    assert _post(base_url, secret, body, key="worker-once").status_code == 200
    time.sleep(1.5)
    assert EmailOutbox.objects.filter(booking_id=booking_id).count() == 1
    assert len("".join(f.read_text() for f in mail_dir.iterdir()).split("\nTo: ")) == 2

    # The request id travelled with the task: the worker's lines for it show the client's id.
    _stop(worker)
    log = worker.stderr.read().decode()
    sent = [line for line in log.splitlines() if f"Sent email {row.pk} " in line]
    assert len(sent) == 1, log
    assert " INFO notifications.services [trace-worker-1] " in sent[0]
    assert "[trace-worker-1] Task notifications.tasks.send_email_task[" in log
    assert "INFO celery.apps.worker [-] celery@" in log  # the worker's own lines: no request


def test_broker_down_loses_nothing_the_relay_sends_it_later(
    team, event_type, broker_url, mail_dir, process_env, start_server, start_worker
):
    _, secret = api_key_create(team=team)
    dead_broker = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    base_url = start_server(dead_broker)

    started = time.monotonic()
    response = _post(base_url, secret, create_body(event_type, in_days(2)))
    assert response.status_code == 201, response.text
    assert time.monotonic() - started < 3  # the API keeps answering, without waiting on it
    booking_id = response.json()["booking"]["id"]
    row = EmailOutbox.objects.get(booking_id=booking_id)
    assert (row.status, row.attempts) == ("pending", 0)
    assert list(mail_dir.iterdir()) == []

    # Later, with the broker back: the periodic relay picks up the row whose task was lost.
    worker = start_worker(broker_url)
    EmailOutbox.objects.filter(pk=row.pk).update(
        next_attempt_at=row.next_attempt_at.replace(year=2000)
    )
    relay = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from notifications.tasks import relay_emails_task; relay_emails_task.delay()",
        ],
        cwd=ROOT,
        env={**process_env, "CELERY_BROKER_URL": broker_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert relay.returncode == 0, relay.stderr
    _wait(
        lambda: EmailOutbox.objects.filter(pk=row.pk, status="sent").exists(),
        what="the relayed email to be sent",
    )
    assert len(list(mail_dir.iterdir())) == 1
    # Relayed outside any request: its lines carry no request id.
    _stop(worker)
    log = worker.stderr.read().decode()
    assert f" INFO notifications.services [-] Sent email {row.pk} " in log, log
