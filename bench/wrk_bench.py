#!/usr/bin/env python
"""The production configuration under wrk, at a million bookings: requests/s, p50, p99, ratios.

    .venv/bin/python bench/wrk_bench.py [--database-url URL] [--small-database-url URL]
        [--seconds 10] [--warmup 3] [--connections 8] [--threads 2] [--workers 2]

Serves the project as production does (``bench.production_settings``: the production settings
plus a plain JSON view; PostgreSQL; Redis as cache and broker; gunicorn with
``bookings_project/gunicorn_conf.py``) and drives it with wrk from a separate process, one
scenario after another, each warmed up and then measured. See bench/README.md for what each
scenario does and how the pgbench replay and the open-loop run work. Prints one table and
writes it as JSON to .data/bench/wrk_last.json (wrk's own output: wrk_last.log).
"""

import argparse
import http.client
import json
import math
import os
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pgbench_replay, wrk_lua  # noqa: E402
from bench.wrk_report import Row, report  # noqa: E402
from bench.wrk_services import (  # noqa: E402
    CeleryDrain,
    Server,
    cpu_by_part,
    cpu_seconds,
    ensure_compiled,
    ensure_database,
    ensure_debian_tool,
    flush_redis,
    interference,
)

DATA = ROOT / ".data" / "bench"
OPEN_LOOP = DATA / "open_loop"  # built from bench/open_loop.c
PG = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"
CACHE_DB, BROKER_DB, SMALL_BROKER_DB = 4, 5, 6  # the bench's own; flushed at the start
SLOTS = 30 * 96  # 15-minute times in a 30-day window; each holds 10 bookings (one per host)
# Where in the run's region (days from its start) each kind of booking goes.
WINDOWS = {
    "create": 0,
    "keyed": 30,
    "reschedule": 60,
    "misc": 90,  # the replayed create, the captured ones
    "precreate": 91,
    "pgbench_warm": 245,
    "pgbench": 275,  # to 335 days
    "create_again": 340,  # to 370: the region fits between 400 days and the 5-year horizon
}
PGBENCH_SLOTS = 60 * 96
PRECREATE_MAX = 20_000  # lifecycle bookings per action: 150 days of the region at most
SOCKET_ERRORS = ("connect", "read", "write", "timeout")


class Bench:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.run = secrets.token_hex(3)
        self.secret_key = secrets.token_urlsafe(50)
        self.rows: list[Row] = []
        self.log = (DATA / "wrk_last.log").open("w")
        # A fresh region each run, past the seeded year and within the 5-year horizon.
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.region = today + timedelta(days=random.randint(400, 1400))

    def env(self, database_url: str, broker_db: int) -> dict:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.production_settings",
            "DEBUG": "false",
            "SECRET_KEY": self.secret_key,
            "DATABASE_URL": database_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CACHE_URL": f"{REDIS}/{CACHE_DB}",
            "CELERY_BROKER_URL": f"{REDIS}/{broker_db}",
            "EMAIL_URL": "smtp://127.0.0.1:1",  # the server only queues; the drain sets its own
            "SECURE_SSL_REDIRECT": "false",
            "API_RATE_LIMIT": "1000000000",  # counted on every request, never refused
        }

    def window(self, name: str) -> datetime:
        return self.region + timedelta(days=WINDOWS[name])

    def django(self, module: str, command: str, arguments: dict, env: dict) -> dict:
        """Run ``python -m module command json`` under Django; its ``PREFIX {json}`` line."""
        done = subprocess.run(
            [sys.executable, "-m", module, command, json.dumps(arguments)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        for line in done.stdout.splitlines():
            if line.startswith("WRK_"):
                return json.loads(line.split(" ", 1)[1])
        sys.exit(f"{module} {command} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")

    # --- wrk -------------------------------------------------------------------------------

    def wrk(self, server: Server, slug: str, name: str, kind: str, path: str, **values) -> Row:
        """Warm up, then measure; a script with a counter goes on where the warm-up stopped."""
        args, offset = self.args, 0
        for phase, seconds in (("warm-up", args.warmup), ("measured", args.seconds)):
            lua = self.workdir / f"{slug}-{phase}.lua"
            lua.write_text(wrk_lua.script(kind, threads=args.threads, offset=offset, **values))
            command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s"]
            command += ["--timeout", "10s", "--latency", "-s", str(lua), f"{server.url}{path}"]
            cpu_before, wrk_before = cpu_seconds(), _children_cpu()
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            cpu = cpu_by_part(cpu_before, cpu_seconds(), server.process.pid)
            cpu["load"] += _children_cpu() - wrk_before  # wrk has exited: not in /proc
            self.log.write(f"### {name} ({phase})\n$ {' '.join(command)}\n{output}\n")
            stats = json.loads(output.split("WRK_JSON ", 1)[1].splitlines()[0])
            offset += stats["used"] * args.threads
        samples = [line[11:] for line in output.splitlines() if line.startswith("WRK_SAMPLE ")]
        return self.add(
            Row(
                key=slug,
                name=name,
                rate=stats["requests"] / (stats["duration_us"] / 1e6),
                p50_ms=stats["p50_us"] / 1000,
                p99_ms=stats["p99_us"] / 1000,
                errors=stats["non2xx"] + sum(stats[k] for k in SOCKET_ERRORS),
                exhausted=stats["exhausted"],
                sample=samples[0] if samples else "",
                used=offset,
                # CPU per request of each part of the stack, in µs (the measured phase)
                extra={"cpu_us": {k: v * 1e6 / stats["requests"] for k, v in cpu.items()}},
            )
        )

    def add(self, row: Row, note: str = "") -> Row:
        latency = "" if row.p50_ms is None else f"p50 {row.p50_ms:7.2f}  p99 {row.p99_ms:7.2f} ms"
        print(
            f"  {row.name:52} {row.rate:8.1f}/s  {latency}  errors {row.errors} {note}", flush=True
        )
        self.rows.append(row)
        return row

    def slots(self, window: str) -> dict:
        return {"start": int(self.window(window).timestamp()), "slots": SLOTS}

    # --- the phases ------------------------------------------------------------------------

    def http_scenarios(self, server: Server, setup: dict, small: Server, small_setup: dict) -> None:
        key, deep_key = {"secret": setup["secret"]}, {"secret": setup["deep_secret"]}
        self.wrk(server, "plain", "plain Django JSON view", "fixed", "/bench/plain", secret="")
        one = f"/v1/bookings/{setup['booking_id']}"
        floor = f"/bench/round-trips?id={setup['booking_id']}"
        name = "plain view + a GET's two round trips (Redis, PostgreSQL)"
        self.wrk(server, "round_trips", name, "fixed", floor, secret="")
        self.wrk(server, "get", "GET /v1/bookings/{id}", "fixed", one, **key)
        page = "/v1/bookings?limit=50"
        self.wrk(server, "list", f"GET {page}", "fixed", page, **key)
        # The replay next, while the plain view's figure is a minute old (it used to come
        # after the creates, five minutes later, and so measured the machine's drift too).
        self.replay(server, setup)
        deep = f"list, {setup['deep_team_name']} ({setup['deep_bookings']:,} rows)"
        self.wrk(server, "deep_first", f"{deep}, first page", "fixed", page, **deep_key)
        if setup["deep_cursor"]:
            # In the order first, deep, deep, first: the drift during the four cancels out of
            # the ratio of the sums (as for the creates at two sizes).
            cursor = quote(setup["deep_cursor"], safe="")
            name = f"{deep}, depth {setup['deep_depth']:,}"
            for slug in ("deep", "deep_again"):
                self.wrk(server, slug, name, "fixed", f"{page}&cursor={cursor}", **deep_key)
            name = f"{deep}, first page again"
            self.wrk(server, "deep_first_again", name, "fixed", page, **deep_key)

        common = {**key, "event_type": setup["intro_call"], "run": self.run}
        create = self.wrk(server, "create", "create", "create", "/v1/bookings", keyed="false",
                          **common, **self.slots("create"))  # fmt: skip
        self.creates_at_two_sizes(server, common, small, small_setup)
        keyed = self.wrk(server, "keyed", "create with a new Idempotency-Key", "create",
                         "/v1/bookings", keyed="true", **common, **self.slots("keyed"))  # fmt: skip

        wanted = 3 * max(create.rate, keyed.rate) * (self.args.warmup + self.args.seconds)
        count = max(1000, min(PRECREATE_MAX, math.ceil(wanted)))
        fields = ("team_id", "key_id", "intro_call", "onboarding", "hosts")
        arguments = {name: setup[name] for name in fields}
        start = self.window("precreate").isoformat()
        arguments.update(start=start, count=3 * count, pending=count, run=self.run)
        made = self.django("bench.wrk_setup", "precreate", arguments, server.env)
        print(f"  (pre-created {count:,} bookings for each lifecycle action)", flush=True)
        scheduled = made["scheduled"]
        for action, name, ids in (
            ("confirm", "confirm (PENDING_CONFIRMATION)", made["pending"]),
            ("cancel", "cancel", scheduled[:count]),
            ("patch", "PATCH the attendee's email", scheduled[count : 2 * count]),
            ("reschedule", "reschedule", scheduled[2 * count :]),
        ):
            ids_file = self.workdir / f"{action}.ids"
            ids_file.write_text("\n".join(ids) + "\n")
            self.wrk(server, action, name, "walk", "/", action=action, ids_file=ids_file,
                     run=self.run, **key, **self.slots("reschedule"))  # fmt: skip
        # Each open loop runs at a share of its path's peak measured just before it: the
        # machine's speed drifts by more than the 20 % of headroom in a few minutes.
        name = "GET /v1/bookings/{id}, again before its open loop"
        get = self.wrk(server, "get_again", name, "fixed", one, **key)
        self.open_loop(server, "open_loop", "GET /v1/bookings/{id}", one, get.rate, key)
        # The baseline again, minutes later: how far the machine's own speed drifted while the
        # ratios above were measured against the first one.
        name = "plain Django JSON view, again at the end"
        plain = self.wrk(server, "plain_end", name, "fixed", "/bench/plain", secret="")
        what = "plain Django JSON view"
        self.open_loop(server, "open_loop_plain", what, "/bench/plain", plain.rate, {"secret": ""})

    def replay(self, server: Server, setup: dict) -> None:
        """One create with a key, then the same key and body again and again."""
        idempotency_key = f"wrk-{self.run}-replay"
        body = json.dumps(
            {
                "event_type_id": setup["intro_call"],
                "requested_time": self.window("misc").strftime("%Y-%m-%dT%H:%M:%SZ"),
                "attendee": {"name": "Wrk Bench", "email": "wrk-bench@example.com"},
            }
        )
        headers = {"Authorization": f"Bearer {setup['secret']}", "Idempotency-Key": idempotency_key}
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/v1/bookings", body, {**headers, "Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 201:
            sys.exit(f"The create to replay answered {response.status}: {response.read()[:300]}")
        conn.close()
        values = {"secret": setup["secret"], "key": idempotency_key, "body": body}
        name = "replayed create (same key and body)"
        self.wrk(server, "replay", name, "replay", "/v1/bookings", **values)

    def creates_at_two_sizes(self, server: Server, common: dict, small: Server, setup: dict):
        """The create at 10,000 bookings, twice, then at a million again: with the first create
        at a million, the order 1M, 10k, 10k, 1M, whose sums cancel the machine's drift."""
        values = {"secret": setup["secret"], "event_type": setup["intro_call"], "run": self.run}
        name = f"create at {setup['total_bookings']:,} bookings"
        for slug, window in (("create_small", "create"), ("create_small_again", "keyed")):
            self.wrk(small, slug, name, "create", "/v1/bookings", keyed="false", **values,
                     **self.slots(window))  # fmt: skip
        self.wrk(server, "create_again", "create, again", "create", "/v1/bookings", keyed="false",
                 **common, **self.slots("create_again"))  # fmt: skip

    def open_loop(
        self, server: Server, slug: str, what: str, path: str, peak: float, key: dict
    ) -> None:
        """``path`` (``what``) at a fixed share of ``peak`` (its closed-loop rate), open loop."""
        rate, args = round(self.args.open_loop_share * peak), self.args
        command = [str(OPEN_LOOP), f"{server.url}{path}"]
        command += ["--rate", str(rate), "--seconds", str(args.seconds)]
        command += ["--warmup", str(args.warmup), "--connections", str(args.connections)]
        shown = " ".join(command)
        if key["secret"]:
            command += ["--header", f"Authorization: Bearer {key['secret']}"]
            shown += " --header …"
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        self.log.write(f"### {what}, open loop\n$ {shown}\n{output}\n")
        stats = json.loads(output.split("OPEN_LOOP ", 1)[1])
        row = Row(
            key=slug,
            name=f"{what}, open loop at {args.open_loop_share:.0%} of peak",
            rate=stats["achieved"],
            p50_ms=stats["p50_ms"],
            p99_ms=stats["p99_ms"],
            errors=stats["errors"] + stats["non2xx"],
            sample=stats["sample"],
            extra={k: stats[k] for k in ("rate", "lag_p50_ms", "lag_p99_ms", "cpu_percent")},
        )
        note = f"(asked {rate}/s; generator CPU {stats['cpu_percent']:.0f} %)"
        self.add(row, note)

    def pgbench(self, env: dict, setup: dict, database_url: str) -> None:
        """Capture one create's SQL now, and replay it with pgbench (warm-up, measure)."""
        misc = self.window("misc")
        times = [(misc + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in (2, 3)]
        arguments = {"secret": setup["secret"], "event_type": setup["intro_call"], "times": times}
        captured = self.django("bench.pgbench_replay", "capture", arguments, env)
        path = DATA / "wrk_create.pgbench.sql"  # kept: what was replayed
        path.write_text(pgbench_replay.script(captured, hosts=setup["hosts"]))
        phases = (("pgbench_warm", self.args.warmup), ("pgbench", self.args.seconds))
        for phase, (window, seconds) in enumerate(phases):
            result = pgbench_replay.run(
                path,
                database_url=database_url,
                clients=self.args.connections,
                threads=self.args.threads,
                seconds=seconds,
                phase=phase,
                start=int(self.window(window).timestamp()),
                slots=PGBENCH_SLOTS,
            )
            self.log.write(f"### pgbench ({window})\n{result['output']}\n")
        name = f"pgbench replay of the create's {len(captured['queries'])} statements"
        row = Row(key="pgbench", name=name, rate=result["tps"], p50_ms=None, p99_ms=None,
                  errors=int(result["failed"]), sample=result["error"])  # fmt: skip
        self.add(row, f"({self.args.connections} clients)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=f"{PG}/bookings_bench_wrk",
        help="1,000,000 bookings with the Deep List team (seeded when empty)",
    )
    parser.add_argument(
        "--small-database-url",
        default=f"{PG}/bookings_bench_10k",
        help="10,000 bookings, the same teams (seeded when empty)",
    )
    parser.add_argument("--seconds", type=int, default=10, help="measured, per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="seconds before each measure")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads, pgbench -j")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--depth", type=int, default=500_000, help="rows before the deep page")
    parser.add_argument(
        "--open-loop-share",
        type=float,
        default=0.8,
        help="open-loop rate as a share of GET booking's peak",
    )
    args = parser.parse_args()

    ensure_debian_tool("wrk", "wrk")
    ensure_compiled(ROOT / "bench" / "open_loop.c", OPEN_LOOP)
    if shutil.which("pgbench") is None:
        sys.exit("pgbench is missing: it comes with the PostgreSQL server package.")
    ensure_database(args.database_url, ["--deep-team", "500000"], "about 6 minutes")
    ensure_database(args.small_database_url, ["--bookings", "10000"], "a few seconds")
    flush_redis(REDIS, [CACHE_DB, BROKER_DB, SMALL_BROKER_DB])
    DATA.mkdir(parents=True, exist_ok=True)

    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"Warning: load average {load:.1f} before the run: the figures will be lower.")
    cpu_before, clock_before = cpu_seconds(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wrk_bench_") as workdir:
        bench = Bench(args, Path(workdir))
        env = bench.env(args.database_url, BROKER_DB)
        print("Preparing the database (removing earlier runs' bookings) …", end=" ", flush=True)
        clock = time.monotonic()
        setup = bench.django("bench.wrk_setup", "prepare", {"depth": args.depth}, env)
        small_env = bench.env(args.small_database_url, SMALL_BROKER_DB)
        small_setup = bench.django("bench.wrk_setup", "prepare", {"depth": 0}, small_env)
        print(f"{setup['removed']:,} removed, {time.monotonic() - clock:.1f} s", flush=True)
        started = datetime.now(UTC)
        # The server on the small database waits, idle, for its creates (between the others).
        with (
            Server(env, args.workers, DATA / "wrk_gunicorn.log") as server,
            Server(small_env, args.workers, DATA / "wrk_gunicorn_10k.log") as small,
        ):
            print(f"gunicorn on {server.url}, {args.workers} workers; scenarios:", flush=True)
            bench.http_scenarios(server, setup, small, small_setup)
            memory = server.memory()
        bench.pgbench(env, setup, args.database_url)
        print("Draining the queued emails with a Celery worker …", flush=True)
        with CeleryDrain(env, REDIS, BROKER_DB, DATA / "wrk_celery.log") as drain:
            celery = drain.run()
        flush_redis(REDIS, [SMALL_BROKER_DB])  # the small database's emails are not drained
        bench.log.close()
    others = interference(cpu_before, cpu_seconds())
    meta = {
        "started": started.isoformat(),
        "database": args.database_url.rsplit("/", 1)[1],
        "bookings": setup["total_bookings"],
        "team": setup["team_name"],
        "deep_depth": setup["deep_depth"],
        "depth_asked": args.depth,
        **{name: getattr(args, name) for name in ("workers", "connections", "threads")},
        **{name: getattr(args, name) for name in ("seconds", "warmup")},
        "cores": os.cpu_count(),
        "load_before": load,
        "wall_s": time.monotonic() - clock_before,
        "other_cpu_s": dict(others[:5]),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
    report(bench.rows, meta=meta, memory=memory, celery=celery, path=DATA / "wrk_last.json")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\nInterrupted: what the bench started has been stopped.")
