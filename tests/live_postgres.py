"""A private PostgreSQL cluster for tests that stop the database: ``initdb`` + ``pg_ctl`` in a
temporary directory, on a free port, listening on 127.0.0.1 only, trust authentication.

Never the shared server on 5432: other tests run on it. The cluster belongs to the test that
made it, which may stop and start it at will (``stop(mode)``, ``start()``); the fixture
``private_postgres`` removes it afterwards, whatever the test did.

initdb and postgres refuse to run as root: as root, every command runs as the ``postgres`` OS
user (``runuser``), in a directory that user owns.
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .notifications.live import free_port

PG_USER = "postgres"  # the OS user the server runs as (when we are root), and the role


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if not found:
        pytest.skip("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class PostgresCluster:
    def __init__(self):
        self.bin = _bin_dir()
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        # Not pytest's tmp_path: its parents are private to root, the server's user could not
        # reach them.
        self.root = Path(tempfile.mkdtemp(prefix="private-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        if self.as_root:
            account = pwd.getpwnam(PG_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", PG_USER, "--", *command]
        done = subprocess.run(  # noqa: S603
            command, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                f"\n{self.log()}"
            )
        return done

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",  # a throw-away cluster: no need to flush the template files
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 50\n"
                "shared_buffers = 16MB\n"
            )

    def start(self) -> None:
        """Start and wait until it accepts connections (after crash recovery, if any)."""
        data, log_path = str(self.data), str(self.log_path)
        self._run("pg_ctl", "start", "-D", data, "-l", log_path, "-w", "-t", "60")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: roll back and disconnect every client, then shut down cleanly.
        ``immediate``: kill every server process at once (a crash; recovery on next start)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")

    def createdb(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, name)
        return self.url(name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def remove(self) -> None:
        """Stop the server if it may be running (whatever state the test left it in) and
        delete its directory."""
        if (self.data / "postmaster.pid").exists():
            # An AssertionError: not running after all, its pid file is stale.
            with contextlib.suppress(AssertionError):
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres():
    """A running private cluster (``.url(database)``, ``.createdb(name)``, ``.stop(mode)``,
    ``.start()``), stopped and deleted on teardown even when the test fails."""
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
