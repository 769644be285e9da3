"""The hot paths in one process, no HTTP server: the CPU each request costs, and where it goes.

    .venv/bin/python bench/paths.py [--database-url URL] [--requests 2000] [--profile get]

It calls the WSGI handler directly, as gunicorn's worker does (request signals included, and
the worker's collector settings), under the production settings (``bench.production_settings``,
Redis db 4 and 5 as in ``wrk_bench.py``) on the million-booking database, one request at a
time: plain view, GET of a booking, a list page of 50, a replayed create, a create (each at a
new time); with ``--paths …,keyed``, also a create with a new Idempotency-Key. It prints the
mean and p50 microseconds per request, the ratio of each to the plain view, the CPU this
process spent per request (the server's share of it: PostgreSQL's and Redis's own are not in
it), and the number of SQL statements each sends. With ``--profile NAME`` it runs that path
under cProfile and prints the top functions. Wall-clock figures in one process: nothing here
is measured against another process's load, so it is the quickest before/after of a code
change (wrk_bench.py is the real measurement).
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REDIS = "redis://127.0.0.1:6379"


def _environ(method: str, path: str, query: str = "", body: bytes = b"", headers=None) -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ["wsgi.input"] = io.BytesIO(body)
    return environ


def _call(app, environ: dict) -> tuple[int, bytes]:
    statuses = []
    environ["wsgi.input"].seek(0)
    result = app(environ, lambda status, _headers, exc_info=None: statuses.append(status))
    try:
        content = b"".join(result)
    finally:
        result.close()
    return int(statuses[0].split()[0]), content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bookings_bench_wrk"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", help="a path's name: cProfile it and print the top")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--rounds", type=int, default=3, help="the best round's figures")
    parser.add_argument("--sql", action="store_true", help="print each path's statements")
    parser.add_argument(
        "--plans", action="store_true", help="the prepared statements' generic and custom plans"
    )
    parser.add_argument("--paths", default="plain,get,list,replay,create", help="which, in order")
    args = parser.parse_args()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.production_settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": args.database_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CACHE_URL": f"{REDIS}/4",
            "CELERY_BROKER_URL": f"{REDIS}/5",
            "EMAIL_URL": "smtp://127.0.0.1:1",
            "SECURE_SSL_REDIRECT": "false",
            "API_RATE_LIMIT": "1000000000",
        }
    )
    import django

    django.setup()
    import gc

    from django.db import connection

    from bench import wrk_setup
    from bookings_project.api.wsgi import AcyclicWSGIHandler
    from bookings_project.gunicorn_conf import GC_THRESHOLDS

    setup = wrk_setup.prepare(0)
    app = AcyclicWSGIHandler()  # the handler gunicorn serves, with its worker's collector
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    auth = {"Authorization": f"Bearer {setup['secret']}"}
    region = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    region += timedelta(days=secrets.randbelow(900) + 400)
    slot = iter(range(10**9))

    def create_body() -> bytes:
        # 10 hosts: each 15-minute time takes ten bookings, one per host, then the next time.
        at = region + timedelta(minutes=15 * (next(slot) // 10))
        return json.dumps(
            {
                "event_type_id": setup["intro_call"],
                "requested_time": at.isoformat().replace("+00:00", "Z"),
                "attendee": {"name": "Paths Bench", "email": "paths@example.com"},
            }
        ).encode()

    replay_body = create_body()
    replay = _environ(
        "POST",
        "/v1/bookings",
        body=replay_body,
        headers={**auth, "Idempotency-Key": f"wrk-p-{secrets.token_hex(6)}"},
    )
    _call(app, replay)
    paths = {
        "plain": lambda: _environ("GET", "/bench/plain"),
        "get": lambda: _environ("GET", f"/v1/bookings/{setup['booking_id']}", headers=auth),
        "list": lambda: _environ("GET", "/v1/bookings", "limit=50", headers=auth),
        "replay": lambda: replay,
        "create": lambda: _environ("POST", "/v1/bookings", body=create_body(), headers=auth),
        "keyed": lambda: _environ(
            "POST",
            "/v1/bookings",
            body=create_body(),
            headers={**auth, "Idempotency-Key": f"wrk-p-{secrets.token_hex(8)}"},
        ),
    }
    expected = {"plain": 200, "get": 200, "list": 200, "replay": 200, "create": 201, "keyed": 201}
    if args.profile:
        make = paths[args.profile]
        for _ in range(200):
            _call(app, make())
        profiler = cProfile.Profile()
        environs = [make() for _ in range(args.requests)]
        profiler.enable()
        for environ in environs:
            _call(app, environ)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
        return
    print(f"{'path':8} {'mean µs':>9} {'p50 µs':>9} {'÷ plain':>8} {'CPU µs':>8} {'SQL':>4}")
    plain = None
    for name in args.paths.split(","):
        make = paths[name]
        for _ in range(100):
            _call(app, make())
        queries = []

        def count(execute, sql, *args, queries=queries):
            queries.append(sql)
            return execute(sql, *args)

        with connection.execute_wrapper(count):
            status, content = _call(app, make())
        if status != expected[name]:
            sys.exit(f"{name}: {status} {content[:300]!r}")
        rounds = []
        for _ in range(args.rounds):
            environs = [make() for _ in range(args.requests)]
            timings = []
            cpu = time.process_time()
            for environ in environs:
                started = time.perf_counter()
                _call(app, environ)
                timings.append(time.perf_counter() - started)
            cpu = (time.process_time() - cpu) / len(environs)
            rounds.append((statistics.median(timings), statistics.fmean(timings), cpu))
        p50, mean, cpu = (value * 1e6 for value in min(rounds))
        plain = plain or p50
        line = f"{name:8} {mean:9.0f} {p50:9.0f} {plain / p50:8.3f} {cpu:8.0f} {len(queries):4}"
        print(line)
        if args.sql:
            for sql in queries:
                print("    " + sql[:300])
    if args.plans:
        # Each statement this connection prepared, and how often PostgreSQL planned it anew
        # (custom) rather than reusing its one plan (generic).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT generic_plans, custom_plans, statement FROM pg_prepared_statements"
                " ORDER BY prepare_time"
            )
            print(f"{'generic':>8} {'custom':>7}  prepared statement")
            for generic, custom, statement in cursor.fetchall():
                print(f"{generic:8} {custom:7}  {' '.join(statement.split())[:110]}")


if __name__ == "__main__":
    main()
