#!/usr/bin/env python
"""Time the admin's pages over a big database (made by bench/seed_million.py).

    .venv/bin/python bench/admin_pages.py [--database-url URL] [--repeat N] [--index-timings]

Serves the project with gunicorn (bench.settings: DEBUG off, persistent connections as in
production), logs in to /admin/ as bench/bench with a requests.Session (CSRF token and
session cookie, as a browser), and requests each page once to warm up, then ``--repeat``
times (default 10), one at a time. Redirects are not followed: a 302 is reported as such
(the admin answers an unknown filter parameter with a redirect to ``?e=1``).

Then a second pass runs the same pages in this process through Django's test Client inside
``CaptureQueriesContext`` (same settings and database, no gunicorn): the number of queries
and their total time. Every SELECT touching the booking, history or outbox table is
EXPLAINed; a Seq Scan on one of them, a query slower than ``--slow-query-ms`` (default 50),
and the slowest query of a page slower than ``--slow-page-ms`` (default 150) are printed
with their EXPLAIN (ANALYZE, BUFFERS).

``--index-timings`` also times CREATE INDEX on bookings_booking for (lower(attendee_email))
and (start_time, id), each inside a transaction that is rolled back.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bookings_bench"
BIG_TABLES = ("bookings_booking", "bookings_bookinghistory", "notifications_emailoutbox")
INDEXES = {
    "lower(attendee_email)": "(lower(attendee_email))",
    "(start_time, id)": "(start_time, id)",
}


def server_env(url: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "DEBUG": "false"}
    env.pop("CELERY_BROKER_URL", None)
    env.update(DATABASE_URL=url, DATABASE_CONN_MAX_AGE="60", EMAIL_URL="consolemail://")
    return env


def check_statistics(conn) -> None:
    """Warn about expression indexes ANALYZE has not seen: until it has, the planner guesses
    their selectivity (0.5 %) and may walk another index instead."""
    missing = conn.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_class t ON t.oid = i.indrelid WHERE i.indexprs IS NOT NULL "
        "AND t.relname = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pg_stats s WHERE s.tablename = c.relname)",
        [list(BIG_TABLES)],
    ).fetchall()
    if missing:
        names = ", ".join(row[0] for row in missing)
        print(f"WARNING: no statistics yet for expression indexes {names} (run ANALYZE)")


def sample(url: str) -> dict:
    """Ids for the filters: a team, its round-robin event type, one of its hosts, and a
    rescheduled booking (so its change page has history and emails)."""
    with psycopg.connect(url) as conn:
        team = conn.execute("SELECT id FROM bookings_team ORDER BY id OFFSET 17 LIMIT 1").fetchone()
        team = team or conn.execute("SELECT id FROM bookings_team LIMIT 1").fetchone()
        event_type, host = conn.execute(
            "SELECT e.id, h.member_id FROM bookings_eventtype e "
            "JOIN bookings_eventtypehost h ON h.event_type_id = e.id "
            "WHERE e.team_id = %s ORDER BY e.scheduling_type DESC, e.id, h.id LIMIT 1",
            team,
        ).fetchone()
        booking = (
            conn.execute(
                "SELECT id, attendee_email, attendee_name FROM bookings_booking "
                "WHERE rescheduled_to_id IS NOT NULL LIMIT 1"
            ).fetchone()
            or conn.execute(
                "SELECT id, attendee_email, attendee_name FROM bookings_booking LIMIT 1"
            ).fetchone()
        )
    return {
        "team": team[0],
        "event_type": event_type,
        "host": host,
        "booking": booking[0],
        "email": booking[1],
        "name": booking[2],
    }


def pages(s: dict) -> list[tuple[str, str]]:
    month_start = (datetime.now(UTC).date().replace(day=1) - timedelta(days=80)).replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    month = {"start_from": month_start.isoformat(), "start_to": month_end.isoformat()}
    bookings = "/admin/bookings/booking/"

    def q(**params) -> str:
        return f"{bookings}?{urlencode(params)}"

    return [
        ("admin index", "/admin/"),
        ("bookings", bookings),
        ("bookings status=COMPLETED", q(status="COMPLETED")),
        ("bookings status=RESCHEDULED", q(status="RESCHEDULED")),
        ("bookings team=", q(team=s["team"])),
        ("bookings event_type=", q(event_type=s["event_type"])),
        ("bookings host=", q(host=s["host"])),
        ("bookings start_from/start_to (month)", q(**month)),
        ("bookings team+status+month", q(team=s["team"], status="SCHEDULED", **month)),
        ("bookings q=<booking id>", q(q=s["booking"])),
        ("bookings q=<attendee email>", q(q=s["email"].upper())),
        ("bookings q=<attendee name>", q(q=s["name"])),
        ("bookings p=2", q(p=2)),
        ("bookings p=200 (10,000 rows in)", q(p=200)),
        ("bookings p=1000", q(p=1000)),
        ("booking change page", f"{bookings}{s['booking']}/change/"),
        ("outbox", "/admin/notifications/emailoutbox/"),
        ("outbox status=failed", "/admin/notifications/emailoutbox/?status=failed"),
        ("api keys", "/admin/bookings/apikey/"),
        ("teams", "/admin/bookings/team/"),
        ("members", "/admin/bookings/teammember/"),
        ("event types", "/admin/bookings/eventtype/"),
        (
            "member autocomplete",
            "/admin/autocomplete/?app_label=bookings&model_name=eventtypehost"
            "&field_name=member&term=a",
        ),
    ]


def serve(env: dict, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "gunicorn", "bench.wsgi:application"]
    command += ["-b", f"127.0.0.1:{port}", "-w", str(workers), "--timeout", "120"]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w")
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit(f"gunicorn did not start; see {log}")


def login(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/admin/login/").raise_for_status()
    response = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "username": username,
            "password": password,
            "next": "/admin/",
        },
        headers={"Referer": f"{base}/admin/login/"},
        allow_redirects=False,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"login failed: HTTP {response.status_code}")
    return session


def time_pages(session, base: str, page_list, repeat: int) -> dict:
    results = {}
    for label, path in page_list:
        first = session.get(base + path, allow_redirects=False)  # warm-up
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = session.get(base + path, allow_redirects=False)
            times.append((time.perf_counter() - started) * 1000)
        status = f"{first.status_code}"
        if first.is_redirect:
            status += " " + first.headers.get("Location", "").rpartition("/")[2]
        results[label] = {
            "status": status,
            "p50": statistics.median(times),
            "max": max(times),
            "kb": len(response.content) / 1024,
        }
        print(f"  {label:38} {status:14} p50 {results[label]['p50']:7.1f} ms", flush=True)
    return results


def shorten(sql: str) -> str:
    """The SQL without its long column list: ``SELECT … FROM``."""
    columns, sep, rest = sql.partition(" FROM ")
    return f"SELECT … FROM {rest}" if sep and len(columns) > 120 else sql


def seq_scans(plan: dict) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in BIG_TABLES:
        found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found += seq_scans(child)
    return found


def query_pass(env: dict, page_list, results: dict, args) -> list[dict]:
    """Queries per page, in-process; EXPLAIN the big tables' SELECTs. Returns the findings."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(raise_request_exception=False)
    client.force_login(User.objects.get(username=args.username))
    findings = []
    for label, path in page_list:
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        queries = [(float(q["time"]) * 1000, q["sql"]) for q in captured.captured_queries]
        result = results[label]
        result["queries"] = len(queries)
        result["db_ms"] = sum(ms for ms, _ in queries)
        result["seq"] = set()
        slowest = max(queries, default=(0, ""))
        for ms, sql in queries:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            if not any(table in sql for table in BIG_TABLES):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                scans = seq_scans(cursor.fetchone()[0][0]["Plan"])
            result["seq"].update(scans)
            slow_page = result["p50"] > args.slow_page_ms and (ms, sql) == slowest
            if scans or ms > args.slow_query_ms or slow_page:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                findings.append({"page": label, "ms": ms, "sql": shorten(sql), "plan": plan})
    return findings


def index_timings(url: str) -> None:
    with psycopg.connect(url) as conn:
        setting = conn.execute("SHOW maintenance_work_mem").fetchone()[0]
        print(f"\nCREATE INDEX on bookings_booking (maintenance_work_mem {setting}; rolled back):")
        for label, columns in INDEXES.items():
            started = time.perf_counter()
            conn.execute(f"CREATE INDEX bench_tmp_index ON bookings_booking {columns}")
            print(f"  {label:24} {time.perf_counter() - started:6.1f} s")
            conn.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--username", default="bench")
    parser.add_argument("--password", default="bench")
    parser.add_argument("--slow-page-ms", type=float, default=150)
    parser.add_argument("--slow-query-ms", type=float, default=50)
    parser.add_argument("--no-queries", action="store_true", help="skip the in-process pass")
    parser.add_argument("--index-timings", action="store_true")
    args = parser.parse_args()

    url = args.database_url
    env = server_env(url)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", BIG_TABLES[:1]
        )
        now = datetime.now(UTC)
        print(f"{url}: about {rows.fetchone()[0]:,} bookings; {now:%Y-%m-%d %H:%M} UTC")
        check_statistics(conn)
    page_list = pages(sample(url))
    log = ROOT / ".data" / "admin_pages.gunicorn.log"
    log.parent.mkdir(exist_ok=True)
    server, port = serve(env, args.workers, log)
    try:
        base = f"http://127.0.0.1:{port}"
        session = login(base, args.username, args.password)
        print(f"gunicorn {args.workers} workers; each page: 1 warm-up + {args.repeat} requests")
        results = time_pages(session, base, page_list, args.repeat)
    finally:
        server.terminate()
        server.wait(timeout=10)
    findings = [] if args.no_queries else query_pass(env, page_list, results, args)

    print("\n| page | HTTP | p50 ms | max ms | KiB | queries | DB ms | Seq Scan on |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for label, r in results.items():
        queries = f"{r['queries']} | {r['db_ms']:.1f}" if "queries" in r else "- | -"
        seq = ", ".join(sorted(r.get("seq", ()))) or "-"
        print(
            f"| {label} | {r['status']} | {r['p50']:.1f} | {r['max']:.1f} | {r['kb']:.0f} "
            f"| {queries} | {seq} |"
        )
    for finding in findings:
        print(
            f"\n--- {finding['page']}: {finding['ms']:.1f} ms\n{finding['sql']}\n{finding['plan']}"
        )
    if args.index_timings:
        index_timings(url)
    print(f"\n(gunicorn's log: {log})")


if __name__ == "__main__":
    main()
