#!/usr/bin/env python
"""Fill a PostgreSQL database with N bookings (default 1,000,000) for the admin's scale bench.

    .venv/bin/python bench/seed_million.py [--database-url URL] [--bookings N] [--reset]
        [--deep-team N]

Migrates the database (``manage.py migrate`` with ``DATABASE_URL``), then writes with
set-based SQL (``INSERT … SELECT … generate_series``): 200 teams x 10 members, 4 event types
each (two round-robin, two SOLO, one of them requiring confirmation), N bookings spread over
the last three years and the next one, a history (created + routed, then confirmed /
completed / no-show / cancelled / rescheduled) and the outbox rows each step would have
queued. Every row satisfies the schema's constraints: each host's bookings sit in distinct
two-hour cells, so no two overlap, whatever their status. With ``--deep-team N``, N of the
bookings go to one more team, *Deep List*, with enough members to hold them (86 for 500,000):
a list half a million rows long, for bench/wrk_bench.py. Then VACUUM ANALYZE, and the
superuser ``bench`` / ``bench`` (plus ``support`` / ``support`` in the Support group).

A database that already holds bookings is left as it is (only the users are ensured);
``--reset`` drops and re-creates it first. Prints each step's time and the row counts.
"""

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import seed_names as names  # noqa: E402
from bench.seed_sql import (  # noqa: E402
    DEEP_TEAM_NAME,
    FUNCTIONS,
    HISTORY,
    RESCHEDULES,
    Shape,
    bookings,
    outbox,
    setup,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bookings_bench"
USERS = """
from django.contrib.auth.models import Group, User
for name, superuser in (("bench", True), ("support", False)):
    user, _ = User.objects.get_or_create(username=name, defaults={"email": f"{name}@bench.example"})
    user.is_staff, user.is_superuser = True, superuser
    user.set_password(name)
    user.save()
    if not superuser:
        user.groups.add(Group.objects.get(name="Support"))
"""


def step(label: str):
    """Print ``label`` and, when the block ends, how long it took."""

    class _Step:
        def __enter__(self):
            print(f"{label} …", end=" ", flush=True)
            self.started = time.monotonic()

        def __exit__(self, *exc):
            if exc[0] is None:
                print(f"{time.monotonic() - self.started:.1f} s", flush=True)

    return _Step()


def recreate(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(url: str, *args: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def seed(conn: psycopg.Connection, shape: Shape, batch: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    day0 = (now - timedelta(days=shape.past_days)).replace(hour=0, minute=0, second=0)
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET work_mem = '256MB'")
    conn.execute("SET jit = off")  # compiling these big expressions costs more than it saves
    conn.execute(FUNCTIONS)
    conn.execute(
        "CREATE TEMP TABLE b_const AS SELECT %s::timestamptz AS now, %s::timestamptz AS day0",
        [now, day0],
    )
    lists = {
        "firsts": names.FIRST_NAMES,
        "lasts": names.LAST_NAMES,
        "firsts_ascii": [names.ascii_slug(n) for n in names.FIRST_NAMES],
        "lasts_ascii": [names.ascii_slug(n) for n in names.LAST_NAMES],
        "domains": names.DOMAINS,
        "team_words": names.TEAM_WORDS,
        "team_kinds": names.TEAM_KINDS,
        "zones": names.TIMEZONES,
        "phones": names.PHONE_PREFIXES,
        "reasons": names.CANCELLATION_REASONS,
        "errors": names.SEND_ERRORS,
    }
    columns = ", ".join(f"%s::text[] AS {key}" for key in lists)
    conn.execute(f"CREATE TEMP TABLE b_names AS SELECT {columns}", list(lists.values()))
    sizes = {f"n_{key}": len(value) for key, value in lists.items()}
    fmt = {**shape.sql_constants(), **sizes}

    deep = f" + {DEEP_TEAM_NAME} ({shape.deep_members} members)" if shape.deep_bookings else ""
    with step(f"teams, members, event types, keys ({shape.teams} teams{deep})"):
        conn.execute(setup(fmt))
        conn.commit()
    for part in shape.parts():
        for lo in range(part.lo, part.hi, batch):
            hi = min(lo + batch, part.hi) - 1
            team = f" ({DEEP_TEAM_NAME})" if part.h0 else ""
            with step(f"bookings {lo:,} to {hi:,}{team}"):
                conn.execute(bookings(fmt, part, lo, hi))
                conn.commit()
    with step("rescheduled pairs"):
        conn.execute(RESCHEDULES)
        pairs = conn.execute("SELECT count(*) FROM b_pair").fetchone()[0]
        conn.commit()
    print(f"  {pairs:,} pairs")
    with step("booking history"):
        conn.execute(HISTORY)
        conn.commit()
    with step("email outbox"):
        conn.execute(outbox(fmt))
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--members", type=int, default=10, help="per team")
    parser.add_argument("--batch", type=int, default=250_000, help="bookings per INSERT")
    parser.add_argument(
        "--deep-team",
        type=int,
        default=0,
        metavar="N",
        help=f"N of the bookings go to one more team, {DEEP_TEAM_NAME!r} (for a deep list)",
    )
    parser.add_argument("--reset", action="store_true", help="drop and re-create the database")
    args = parser.parse_args()
    url = args.database_url
    if not url.startswith("postgres"):
        parser.error("--database-url must be a postgres:// URL")
    shape = Shape(
        bookings=args.bookings,
        teams=args.teams,
        members=args.members,
        deep_bookings=args.deep_team,
    )
    shape.parts()  # fails early when the bookings do not fit

    started = time.monotonic()
    if args.reset:
        with step("drop and create the database"):
            recreate(url)
    else:
        ensure_database(url)
    with step("migrate"):
        manage(url, "migrate", "-v0")
    with psycopg.connect(url) as conn:
        existing = conn.execute("SELECT EXISTS (SELECT 1 FROM bookings_booking)").fetchone()[0]
        if existing:
            print("The database already holds bookings: left as it is (--reset to re-seed).")
        else:
            seed(conn, shape, args.batch)
    if not existing:
        with psycopg.connect(url, autocommit=True) as conn, step("VACUUM ANALYZE"):
            conn.execute("VACUUM ANALYZE")
    with step("users bench/bench (superuser) and support/support (Support group)"):
        manage(url, "shell", "-v", "0", "-c", USERS)
    with psycopg.connect(url) as conn:
        for table in [
            "bookings_team",
            "bookings_teammember",
            "bookings_eventtype",
            "bookings_apikey",
            "bookings_booking",
            "bookings_bookinghistory",
            "notifications_emailoutbox",
        ]:
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            print(f"  {table:28} {count:>10,}")
        print("  bookings by status:")
        for status, count in conn.execute(
            "SELECT status, count(*) FROM bookings_booking GROUP BY 1 ORDER BY 2 DESC"
        ):
            print(f"    {status:22} {count:>10,}")
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"  database size {size.fetchone()[0]}")
    print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
