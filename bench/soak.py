#!/usr/bin/env python
"""A soak: mixed traffic for minutes against the production configuration, then a consistency
check of everything it left behind.

    .venv/bin/python bench/soak.py [--seconds 300] [--threads 6] [--web-workers 2]
        [--database-url postgres://postgres@127.0.0.1:5432/bookings_soak]
        [--cache-url redis://127.0.0.1:6379/10] [--broker-url redis://127.0.0.1:6379/11]

It (re)creates the database (DROPPED first: give it one of its own), migrates it, flushes the
two Redis databases, and starts what production runs: gunicorn with
``bookings_project/gunicorn_conf.py`` under ``bookings_project.settings.production``
(PostgreSQL, Redis as cache and broker) and a Celery worker (prefork, 2 processes), with the
emails going to an SMTP sink in this process (tests/smtp_sink.py). It seeds one team (three
hosts; a SOLO, a ROUND_ROBIN and a confirmation-requiring event type; one API key), then runs
the traffic of bench/soak_traffic.py from ``--threads`` threads for ``--seconds``: creates
with and without ``Idempotency-Key`` and their replays, reads, lists, histories, confirms,
cancels, PATCHes of the attendee's email, reschedules, and the expected refusals — counting
every outcome. It then waits for the email queue to drain and runs
``bookings.consistency.consistency_check`` with the messages the sink received.

Prints the outcomes, the rates, the drain and the check; exit 1 on any 5xx, any unexpected
outcome or any violation. tests/system/test_soak.py runs the same code for 20 s in ``make test``.
"""

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.soak_traffic import Counts, Fixture, Traffic  # noqa: E402

PG = "postgres://postgres@127.0.0.1:5432"


# --- The processes -----------------------------------------------------------------------------


def soak_env(*, database_url: str, cache_url: str, broker_url: str, email_url: str) -> dict:
    """The environment of a production process (bookings_project.settings.production) over
    plain HTTP on loopback, the rate limit out of the way."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "EMAIL_"))},
        "DJANGO_SETTINGS_MODULE": "bookings_project.settings.production",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CACHE_URL": cache_url,
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_URL": email_url,
        "SECURE_SSL_REDIRECT": "false",
        "API_RATE_LIMIT": "1000000000",
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    process.log_path = log
    return process


def process_stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a process started by ``_spawn`` and everything it started (its session)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def instance_start(env: dict, log: Path, *, workers: int = 2) -> tuple[subprocess.Popen, str]:
    """One app instance: a gunicorn master with the repository's production configuration on a
    free loopback port; returns it and its base URL once /healthz answers."""
    port = _free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)}
    args = [sys.executable, "-m", "gunicorn", "-c", "python:bookings_project.gunicorn_conf"]
    process = _spawn([*args, "bookings_project.wsgi"], env, log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/healthz", timeout=2) as response,
        ):
            if response.status == 200:
                return process, url
        if process.poll() is not None or time.monotonic() > deadline:
            process_stop(process)
            raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def worker_start(env: dict, log: Path, *, concurrency: int = 2) -> subprocess.Popen:
    args = [sys.executable, "-m", "celery", "-A", "bookings_project", "worker", "-l", "warning"]
    args += [f"--concurrency={concurrency}", "--without-mingle", "--without-gossip"]
    return _spawn(args, env, log)


@contextlib.contextmanager
def soak_services(env: dict, logs: Path, *, web_workers: int = 2) -> Iterator[str]:
    """gunicorn and a Celery worker, stopped on the way out whatever happens; yields the URL."""
    started: list[subprocess.Popen] = []
    try:
        started.append(worker_start(env, logs / "worker.log"))
        server, url = instance_start(env, logs / "gunicorn.log", workers=web_workers)
        started.append(server)
        yield url
    finally:
        for process in reversed(started):
            process_stop(process)


# --- Seed, drain, check (in this process, through the ORM: Django must be set up) -------------


def soak_seed(*, seconds: float) -> Fixture:
    """One team of three hosts, three event types and a key; the slots the traffic spreads
    over grow with the run, so most creates find a free host and some do not."""
    from bookings.models import EventType, EventTypeHost, Team, TeamMember
    from bookings.services import api_key_create

    run = secrets.token_hex(3)
    team = Team.objects.create(name=f"Soak {run}", slug=f"soak-{run}")
    hosts = [
        TeamMember.objects.create(team=team, name=f"Host {i}", email=f"host{i}-{run}@example.com")
        for i in range(3)
    ]
    kinds = [
        ("solo", "SOLO", False, hosts[:1], 0),
        ("round-robin", "ROUND_ROBIN", False, hosts, 5),
        ("pending", "ROUND_ROBIN", True, hosts[1:], 0),
    ]
    event_types = []
    for slug, scheduling, confirm, members, buffer in kinds:
        event_type = EventType.objects.create(
            team=team,
            name=slug.title(),
            slug=slug,
            duration=30,
            buffer_after=buffer,
            scheduling_type=scheduling,
            requires_confirmation=confirm,
        )
        for member in members:
            EventTypeHost.objects.create(event_type=event_type, member=member)
        event_types.append(event_type.id)
    _, secret = api_key_create(team=team, name="soak")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Fixture(
        secret=secret,
        event_type_ids=event_types,
        region=today + timedelta(days=2),
        days=max(3, int(seconds / 3)),
    )


@dataclass
class Drain:
    seconds: float
    pending_left: int
    sent: int
    received: int


def soak_drain(sink, *, timeout: float = 120) -> Drain:
    """Wait until no email is pending, then until the sink holds one message per SENT row
    (and a second more: a duplicate would arrive by then)."""
    from notifications.models import EmailOutbox

    started = time.monotonic()
    deadline = started + timeout
    pending = EmailOutbox.objects.filter(status=EmailOutbox.Status.PENDING)
    while pending.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    sent = EmailOutbox.objects.filter(status=EmailOutbox.Status.SENT).count()
    while len(sink.messages) < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    return Drain(time.monotonic() - started, pending.count(), sent, len(sink.messages))


@dataclass
class SoakResult:
    counts: Counts
    drain: Drain
    report: object  # bookings.consistency.ConsistencyReport

    @property
    def ok(self) -> bool:
        counts = self.counts
        return not counts.server_errors and not counts.unexpected and self.report.ok


def soak_run(
    *, env: dict, logs: Path, sink, seconds: float, threads: int, web_workers: int = 2
) -> SoakResult:
    """Seed, start the services, run the traffic, drain the emails, check the database."""
    from bookings.consistency import DeliveredEmail, consistency_check

    fixture = soak_seed(seconds=seconds)
    with soak_services(env, logs, web_workers=web_workers) as url:
        counts = Traffic([url], fixture, Counts()).run(seconds=seconds, threads=threads)
        drain = soak_drain(sink)
    delivered = [DeliveredEmail.from_message(received.message) for received in sink.messages]
    report = consistency_check(drained=True, delivered=delivered)
    return SoakResult(counts, drain, report)


def soak_print(result: SoakResult) -> None:
    counts = result.counts
    rate = counts.requests / counts.seconds
    print(f"{counts.requests} requests in {counts.seconds:.0f} s: {rate:.0f}/s")
    for outcome, number in sorted(counts.outcomes.items()):
        flag = "  UNEXPECTED" if outcome in counts.unexpected else ""
        print(f"  {outcome:<45} {number:>7}{flag}")
    print(f"5xx: {counts.server_errors}; unexpected outcomes: {sum(counts.unexpected.values())}")
    drain = result.drain
    print(
        f"drain: {drain.seconds:.1f} s; pending left {drain.pending_left}; "
        f"{drain.sent} sent, {drain.received} received"
    )
    for name, number in result.report.counted.items():
        print(f"  {name}: {number}")
    for violation in result.report.violations[:50]:
        print(f"  VIOLATION {violation}")
    violations = len(result.report.violations)
    print(f"consistency: {f'{violations} violation(s)' if violations else 'OK'}")
    print("SOAK OK" if result.ok else "SOAK FAILED")


# --- The command -------------------------------------------------------------------------------


def _recreate_database(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--database-url", default=f"{PG}/bookings_soak")
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()

    import redis

    from tests.smtp_sink import SmtpSink

    _recreate_database(args.database_url)
    for url in (args.cache_url, args.broker_url):
        redis.Redis.from_url(url).flushdb()
    logs = ROOT / ".data" / "soak"
    logs.mkdir(parents=True, exist_ok=True)
    with SmtpSink() as sink:
        env = soak_env(
            database_url=args.database_url,
            cache_url=args.cache_url,
            broker_url=args.broker_url,
            email_url=sink.url,
        )
        os.environ.update(env)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        print(
            f"soak: {args.seconds:.0f} s, {args.threads} threads, gunicorn "
            f"{args.web_workers} workers + a Celery worker, on {args.database_url} (logs: {logs})",
            flush=True,
        )
        result = soak_run(
            env=env,
            logs=logs,
            sink=sink,
            seconds=args.seconds,
            threads=args.threads,
            web_workers=args.web_workers,
        )
    soak_print(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
