"""Fixtures for the email tests: a recorder in place of the dispatch to a worker, and for the
end-to-end ones gunicorn and Celery workers as processes on the test database, the broker on
our own Redis database number."""

import os
from pathlib import Path

import pytest
import redis

from tests.smtp_sink import SmtpSink

from .live import BIN, free_port, process_environment, start, stop, wait_listening, wait_ready


@pytest.fixture
def dispatched(monkeypatch) -> list[int]:
    """The outbox ids handed to a worker by ``email_dispatch``: recorded, not sent."""
    from notifications import services

    calls: list[int] = []

    def dispatch(*, outbox_id: int) -> bool:
        calls.append(outbox_id)
        return True  # taken, as a broker that is up takes it

    monkeypatch.setattr(services, "email_dispatch", dispatch)
    return calls


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
def sink():
    """An SMTP server in this process (``tests/smtp_sink.py``): point ``email_url`` at it."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def email_url(mail_dir):
    """Where the processes send email: files in ``mail_dir`` unless a test overrides this."""
    return f"filemail:///{mail_dir}"  # four slashes: an absolute path


@pytest.fixture
def process_env(email_url):
    """The environment of a production-like process on the test database."""
    return process_environment(email_url)


@pytest.fixture
def process_logs(tmp_path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def start_server(process_env, process_logs):
    """start(broker) -> the base URL of a one-worker gunicorn serving the API.

    ``workers=N``: production's configuration instead (``gunicorn_conf.py``: preloaded app,
    its timeouts and logging) with N workers."""
    started = []

    def start_server(broker: str, *, workers: int | None = None) -> str:
        port = free_port()
        env = {**process_env, "CELERY_BROKER_URL": broker}
        args = [str(BIN / "gunicorn"), "bookings_project.wsgi:application"]
        if workers is None:
            args += ["-b", f"127.0.0.1:{port}", "-w", "1", "--log-level", "warning"]
        else:
            args += ["-c", "python:bookings_project.gunicorn_conf"]
            env.update(GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY=str(workers))
        server = start(args, env, process_logs / f"gunicorn-{port}.log")
        started.append(server)

        wait_listening(server, port)
        return f"http://127.0.0.1:{port}"

    yield start_server
    for process in started:
        stop(process)


@pytest.fixture
def start_worker(process_env, process_logs):
    """start(broker) -> a Celery worker process (solo pool), once it is ready: its start-up
    (Django, Celery, the broker's connection) is not counted in a test's own waits. Its log:
    live.log(worker)."""
    started = []

    def start_worker(broker: str):
        env = {**process_env, "CELERY_BROKER_URL": broker}
        args = [str(BIN / "celery"), "-A", "bookings_project", "worker", "--pool=solo"]
        args += ["--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "info"]
        worker = start(args, env, process_logs / f"worker-{len(started)}.log")
        started.append(worker)
        wait_ready(worker)
        return worker

    yield start_worker
    for process in started:
        stop(process)
