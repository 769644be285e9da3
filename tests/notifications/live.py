"""Helpers for tests that run the real parts as processes: gunicorn, a Celery worker."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def process_environment(email_url: str) -> dict:
    """The environment of a production-like process on the test database (development
    settings without DEBUG; the caller adds the broker and the cache)."""
    from django.db import connection

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
        EMAIL_URL=email_url,
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll until ``predicate()`` is truthy and return its value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_listening(process: subprocess.Popen, port: int, what: str = "gunicorn") -> None:
    """Wait until ``process`` accepts connections on ``port``; fail with its log if it exits."""

    def up():
        if process.poll() is not None:
            raise AssertionError(f"{what} exited:\n{log(process)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(up, what=f"{what} to listen")


def start(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """Start a process in the repository with its stderr in ``log_path`` (read with log())."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603
            args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file
        )
    process.log_path = log_path
    return process


def log(process: subprocess.Popen) -> str:
    return process.log_path.read_text(errors="replace")


def wait_ready(worker: subprocess.Popen) -> None:
    """Wait until a Celery worker says it is ready (import, connect: up to a minute on a busy
    machine); fail with its log."""
    wait_until(lambda: " ready." in log(worker), timeout=60, what=f"the worker\n{log(worker)}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def relay_run(env: dict) -> None:
    """Enqueue the periodic email relay once, through the broker in ``env``, as beat does."""
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from notifications.tasks import relay_emails_task; relay_emails_task.delay()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
