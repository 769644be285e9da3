#!/usr/bin/env python
"""Create throughput under gunicorn, with and without Idempotency-Key, and replay throughput.

Prints requests/s per scenario and the ratio to a plain Django JSON view served the same way
(same gunicorn, same settings, same client). Run: `make bench` or `.venv/bin/python bench/run.py`.

    BENCH_DATABASE_URL  the database to use (default: a fresh SQLite file under .data/bench/;
                        for PostgreSQL: postgres://postgres@127.0.0.1:5432/bookings_bench,
                        which is dropped and re-created)
    BENCH_SECONDS       seconds per scenario (default 8)
    BENCH_CONCURRENCY   client threads (default 8)
    BENCH_WORKERS       gunicorn workers (default 4)
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(env: dict) -> None:
    url = os.environ.get("BENCH_DATABASE_URL", "")
    if url.startswith("postgres"):
        name = url.rsplit("/", 1)[1]
        admin = url.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
        env["DATABASE_URL"] = url
    else:
        folder = ROOT / ".data" / "bench"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        env["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


SETUP = """
from bookings.services import api_key_create
from bookings.models import EventType, EventTypeHost, Team, TeamMember
team = Team.objects.create(name="Bench", slug="bench")
hosts = [TeamMember.objects.create(team=team, name=f"Host {i}", email=f"h{i}@bench.example")
         for i in range(20)]
event_type = EventType.objects.create(team=team, name="Bench", slug="bench", duration=15,
                                      scheduling_type="ROUND_ROBIN", minimum_booking_notice=0)
for host in hosts:
    EventTypeHost.objects.create(event_type=event_type, member=host)
# 1,000 bookings far ahead, so the list scenario reads full pages.
from datetime import timedelta
from django.utils import timezone
from bookings.ids import new_id
from bookings.models import Booking
start = timezone.now().replace(microsecond=0) + timedelta(days=1000)
rows = []
for n in range(1000):
    s = start + timedelta(minutes=30 * (n // 20))
    rows.append(Booking(id=new_id("bkg"), team=team, event_type=event_type,
                        assigned_to=hosts[n % 20], status="SCHEDULED", start_time=s,
                        end_time=s + timedelta(minutes=15), blocked_start=s,
                        blocked_end=s + timedelta(minutes=15), attendee_name="Seed",
                        attendee_email="seed@example.com", ical_uid=new_id("uid")))
Booking.objects.bulk_create(rows)
print(api_key_create(team=team)[1], event_type.id)
"""


class Client:
    """One keep-alive HTTP connection per thread; counts requests and their statuses."""

    def __init__(self, port: int):
        self.port = port

    def run(self, make_request, seconds: float) -> tuple[int, dict]:
        counts: dict[int, int] = {}
        total = [0]
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def loop(worker: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            n = 0
            while time.monotonic() < deadline:
                method, path, body, headers = make_request(worker, n)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                n += 1
                with lock:
                    counts[response.status] = counts.get(response.status, 0) + 1
                    total[0] += 1
            conn.close()

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(CONCURRENCY)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return total[0] / (time.monotonic() - started), counts


def main() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "DEBUG": "false"}
    env.pop("CELERY_BROKER_URL", None)  # emails: in-process, console backend to /dev/null
    env["EMAIL_URL"] = "consolemail://"
    prepare_database(env)
    output = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SETUP],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    secret, event_type_id = output.strip().splitlines()[-1].split()
    port = free_port()
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "bench.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(WORKERS),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        client = Client(port)
        auth = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        base = time.time() + 86400
        slot = [0]
        slot_lock = threading.Lock()

        def create_body() -> bytes:
            # A new 15-minute slot per request: every create succeeds, none waits on another.
            with slot_lock:
                slot[0] += 1
                n = slot[0]
            start = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(base + n * 15 * 60))
            return json.dumps(
                {
                    "event_type_id": event_type_id,
                    "requested_time": start,
                    "attendee": {"name": "Bench", "email": "bench@example.com"},
                }
            ).encode()

        replay_body = create_body()
        scenarios = {
            "plain Django JSON view": lambda w, n: ("GET", "/bench/plain", None, {}),
            "GET /v1/bookings?limit=50": lambda w, n: ("GET", "/v1/bookings?limit=50", None, auth),
            "create, no key": lambda w, n: ("POST", "/v1/bookings", create_body(), auth),
            "create, with key": lambda w, n: (
                "POST",
                "/v1/bookings",
                create_body(),
                {**auth, "Idempotency-Key": f"{w}-{n}-{time.time_ns()}"},
            ),
            "replay": lambda w, n: (
                "POST",
                "/v1/bookings",
                replay_body,
                {**auth, "Idempotency-Key": "bench-replay"},
            ),
        }
        results = {}
        for name, make_request in scenarios.items():
            client.run(make_request, 1.0)  # warm up: connections, caches, the replay's key
            results[name] = client.run(make_request, SECONDS)

        database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
        print(
            f"\n{database}, gunicorn {WORKERS} sync workers, {CONCURRENCY} client threads, "
            f"{SECONDS:g} s per scenario, {os.cpu_count()} cores\n"
        )
        baseline = results["plain Django JSON view"][0]
        print(f"{'scenario':32} {'req/s':>9} {'vs plain':>9}  statuses")
        for name, (rate, counts) in results.items():
            print(f"{name:32} {rate:9.1f} {rate / baseline:9.2f}  {dict(sorted(counts.items()))}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
