"""What bench/wrk_bench.py starts and stops: gunicorn, a Celery worker with an SMTP sink, the
databases and tools it needs."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent


def ensure_debian_tool(binary: str, package: str) -> None:
    """Install Debian's ``package`` when ``binary`` is missing (apt-get update only if the
    first try fails)."""
    if shutil.which(binary):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    install = [*sudo, "apt-get", "install", "-y", package]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"{binary} is missing: {' '.join(install)}", flush=True)
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update"], env=env)
        subprocess.run(install, env=env)
    if not shutil.which(binary):
        sys.exit(f"Could not install {package}. As root: apt-get install {package}")


def ensure_compiled(source: Path, binary: Path) -> Path:
    """Compile the C program ``source`` with gcc -O2 into ``binary`` when that is missing or
    older than the source (gcc installed from Debian when missing)."""
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    ensure_debian_tool("gcc", "gcc")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.partial")  # never a half-written binary
    command = ["gcc", "-O2", "-Wall", "-o", str(partial), str(source)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    partial.replace(binary)
    return binary


def ensure_database(url: str, seed_args: list[str], how_long: str) -> None:
    """Seed the database when it holds no bookings; migrate it in any case."""
    try:
        with psycopg.connect(url) as conn:
            seeded = conn.execute("SELECT EXISTS (SELECT 1 FROM bookings_booking)").fetchone()[0]
    except psycopg.Error:
        seeded = False
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    if seeded:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        return
    name = url.rsplit("/", 1)[1]
    print(f"{name} holds no bookings: bench/seed_million.py {' '.join(seed_args)} ({how_long})")
    script = ROOT / "bench" / "seed_million.py"
    subprocess.run([sys.executable, script, "--database-url", url, *seed_args], check=True)


def flush_redis(url: str, databases: list[int]) -> None:
    for number in databases:
        redis.Redis.from_url(f"{url}/{number}").flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS), pages shared with other processes included."""
    return _proc_field(f"/proc/{pid}/status", "VmRSS:")


def pss_kib(pid: int) -> int:
    """Proportional set size: each shared page divided among the processes sharing it (the
    workers share the master's pages until they write them)."""
    return _proc_field(f"/proc/{pid}/smaps_rollup", "Pss:")


def _proc_field(path: str, name: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def cpu_seconds() -> dict[int, tuple[str, int, float, float]]:
    """Each process now: its name, parent, CPU time used (user + system, seconds), and the CPU
    time of its children that have exited and been reaped (a recycled gunicorn worker's)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        found[int(stat.parent.name)] = (
            name,
            int(fields[1]),
            (int(fields[11]) + int(fields[12])) / tick,
            (int(fields[13]) + int(fields[14])) / tick,
        )
    return found


def _process_tree(snapshot: dict, root: int) -> set[int]:
    """``root`` and every process it started, as a ``cpu_seconds`` snapshot has them."""
    children_of: dict[int, list[int]] = {}
    for pid, (_, parent, *_) in snapshot.items():
        children_of.setdefault(parent, []).append(pid)
    tree, queue = set(), [root]
    while queue:
        pid = queue.pop()
        tree.add(pid)
        queue.extend(children_of.get(pid, []))
    return tree


def cpu_by_part(before: dict, after: dict, server_pid: int) -> dict[str, float]:
    """CPU seconds used between two snapshots by each part of the stack: the gunicorn server
    (master and workers), PostgreSQL, Redis, the load generator and everything else."""
    server = _process_tree(after, server_pid)
    used = dict.fromkeys(("gunicorn", "postgres", "redis", "load", "other"), 0.0)
    # A worker recycled (max_requests) in between is gone from ``after``: the master reaped it,
    # so its whole life's CPU is in the master's reaped children, less what it had used before.
    used["gunicorn"] += after[server_pid][3] - before[server_pid][3]
    for pid, (_, parent, seconds, _) in before.items():
        if pid not in after and parent == server_pid:
            used["gunicorn"] -= seconds
    for pid, (name, _, seconds, _) in after.items():
        if pid in server:
            part = "gunicorn"
        elif name.startswith("postgres"):
            part = "postgres"
        elif name.startswith("redis"):
            part = "redis"
        elif name in ("wrk", "open_loop", "pgbench"):
            part = "load"
        else:
            part = "other"
        used[part] += seconds - before.get(pid, (name, 0, 0.0, 0.0))[2]
    return used


def interference(before: dict, after: dict) -> list[tuple[str, float]]:
    """CPU seconds other processes used between the two snapshots, busiest first: not ours
    (this process and what it started), not PostgreSQL or Redis (they serve the bench)."""
    ours = _process_tree(after, os.getpid())
    used: dict[str, float] = {}
    for pid, (name, _, seconds, _) in after.items():
        if pid in ours or name.startswith(("postgres", "redis")):
            continue
        used[name] = used.get(name, 0.0) + seconds - before.get(pid, (name, 0, 0.0, 0.0))[2]
    return sorted(((n, s) for n, s in used.items() if s >= 1), key=lambda item: -item[1])


def stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> None:
    """Stop a process started in its own session, and what it started."""
    if process.poll() is not None:
        return
    with _suppress():
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with _suppress():
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _suppress():
    import contextlib

    return contextlib.suppress(ProcessLookupError)


class Server:
    """gunicorn with the repository's configuration file, on a free loopback port."""

    def __init__(self, env: dict, workers: int, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
        }
        self.log_path = log

    def __enter__(self) -> "Server":
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:bookings_project.gunicorn_conf",
                "bookings_project.wsgi",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop it in order
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/bench/plain", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                sys.exit(f"gunicorn did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        self.first_workers = children(self.process.pid)
        return self

    def __exit__(self, *exc) -> None:
        stop(self.process)
        self.log.close()

    def memory(self) -> dict:
        """Resident memory of the master and of each worker (now, after the load)."""
        workers = children(self.process.pid)
        return {
            "master_kib": rss_kib(self.process.pid),
            "workers_kib": [rss_kib(pid) for pid in workers],
            "workers_pss_kib": [pss_kib(pid) for pid in workers],
            "workers_recycled": len(set(workers) - set(self.first_workers)),
        }


class CeleryDrain:
    """A Celery worker (2 processes) sending the emails the run queued to an SMTP sink."""

    def __init__(self, env: dict, redis_url: str, broker_db: int, log: Path, timeout=900.0):
        from tests.smtp_sink import SmtpSink

        self.sink = SmtpSink()
        self.env = env
        self.broker = redis.Redis.from_url(f"{redis_url}/{broker_db}")
        self.log_path = log
        self.timeout = timeout

    def __enter__(self) -> "CeleryDrain":
        self.sink.start()
        self.process = None
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop(self.process, timeout=60)
            self.log.close()
        self.sink.stop()

    def run(self) -> dict:
        queued = self.broker.llen("celery")
        self.log = self.log_path.open("w")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bookings_project",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "warning",
            ],
            cwd=ROOT,
            env={**self.env, "EMAIL_URL": self.sink.url},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        first = last = None
        count = 0
        while time.monotonic() - started < self.timeout and self.process.poll() is None:
            time.sleep(0.2)
            now, count_now = time.monotonic(), len(self.sink.messages)
            if count_now != count:
                count, last = count_now, now
                first = first or now
            idle = self.broker.llen("celery") == 0 and self.broker.hlen("unacked") == 0
            if idle and (count >= queued or (last or started) < now - 5):
                break
        pids = [self.process.pid, *children(self.process.pid)]
        return {
            "queued": queued,
            "sent": count,
            "start_s": (first or started) - started,  # the worker's start-up, to the first
            "drain_s": (last or started) - (first or started),  # first email to last
            "left_in_queue": self.broker.llen("celery"),
            "rss_kib": [rss_kib(pid) for pid in pids],
        }
