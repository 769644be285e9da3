"""A Lua script on Redis, called over one connection per process and thread, written on the
wire: for the one Redis call every API request makes (``bookings.access``: the rate limit,
the API key, a retry's stored response).

redis-py's client costs that call about twice the CPU of the round trip itself — a pool
checkout that polls the socket, the command's packing and its reply callbacks, the script
object's bookkeeping — measured at 140 µs against 68 µs for the same ``EVALSHA`` sent as bytes
and read with hiredis (``bench/README.md``). This sends the same command and reads the same
reply, and keeps redis-py's behaviour where it matters:

- the same exceptions (``redis.ConnectionError``, ``redis.TimeoutError``,
  ``redis.ResponseError``), so callers handle an outage as before;
- the connect and socket timeouts given, and one immediate retry when a connection made
  before (left over from a Redis restart) turns out broken, none after a timeout;
- ``NOSCRIPT`` (a restarted or flushed server) answered by sending the script itself;
- a new connection in a forked child (gunicorn's workers) and per thread.

Only plain ``redis://host:port/db`` URLs (with an optional user and password) are spoken
this way; ``supports`` says which, and anything else (TLS, a Unix socket, options in the
query string) stays on redis-py.
"""

import contextlib
import hashlib
import os
import socket
import threading
from urllib.parse import urlsplit

import hiredis
import redis
from redis.connection import parse_url

_PLAIN = {"host", "port", "db", "username", "password"}


def supports(url: str) -> bool:
    if urlsplit(url).scheme != "redis":
        return False
    try:
        return set(parse_url(url)) <= _PLAIN
    except ValueError:
        return False


def _pack(args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


def _raised(reply):
    """The reply, or its error raised as redis-py raises it."""
    if isinstance(reply, hiredis.ReplyError):
        raise redis.ResponseError(str(reply))
    return reply


class WireClient:
    """``WireClient(url, ...).command("LPUSH", key, value)``: one command's reply, as redis-py's
    ``execute_command`` would give it (a reply error raised as ``redis.ResponseError``), for a
    URL ``supports`` accepts."""

    def __init__(self, url: str, *, connect_timeout: float, timeout: float):
        options = parse_url(url)
        self._address = (options.get("host") or "localhost", int(options.get("port") or 6379))
        self._setup: list[bytes] = []
        if options.get("password"):
            user = [options["username"]] if options.get("username") else []
            self._setup.append(_pack(["AUTH", *user, options["password"]]))
        if int(options.get("db") or 0):
            self._setup.append(_pack(["SELECT", int(options["db"])]))
        self._connect_timeout, self._timeout = connect_timeout, timeout
        self._local = threading.local()

    def command(self, *args):
        return _raised(self._call(_pack(args)))

    def _call(self, command: bytes):
        reused = self._connection(reuse_only=True)
        if reused is not None:
            try:
                return self._exchange(reused, command)
            except redis.TimeoutError:
                raise
            except redis.ConnectionError:
                pass  # broken since its last use (a restart): one new connection, once
        return self._exchange(self._connection(reuse_only=False), command)

    def _connection(self, *, reuse_only: bool):
        local = self._local
        sock = getattr(local, "sock", None)
        if sock is not None and local.pid == os.getpid():
            return sock
        if sock is not None:  # made by the parent before a fork: the child's copy is closed
            self._close()
        if reuse_only:
            return None
        try:
            sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        except TimeoutError:
            raise redis.TimeoutError(f"Timeout connecting to {self._where()}") from None
        except OSError as exc:
            raise redis.ConnectionError(f"Error connecting to {self._where()}: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self._timeout)
        local.sock, local.reader, local.pid = sock, hiredis.Reader(), os.getpid()
        for command in self._setup:
            reply = self._exchange(sock, command)
            if isinstance(reply, hiredis.ReplyError):
                self._close()
                raise redis.ConnectionError(f"Redis refused the connection's set-up: {reply}")
        return sock

    def _exchange(self, sock, command: bytes):
        reader = self._local.reader
        try:
            sock.sendall(command)
            while (reply := reader.gets()) is False:
                data = sock.recv(65536)
                if not data:
                    raise redis.ConnectionError(f"Connection closed by {self._where()}")
                reader.feed(data)
        except TimeoutError:
            self._close()
            raise redis.TimeoutError(f"Timeout reading from {self._where()}") from None
        except hiredis.ProtocolError as exc:
            self._close()
            message = f"Not Redis's protocol from {self._where()}: {exc}"
            raise redis.ConnectionError(message) from None
        except OSError as exc:
            self._close()
            raise redis.ConnectionError(f"Error talking to {self._where()}: {exc}") from None
        except redis.ConnectionError:
            self._close()
            raise
        return reply

    def _close(self) -> None:
        local = self._local
        sock, local.sock = getattr(local, "sock", None), None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _where(self) -> str:
        return f"{self._address[0]}:{self._address[1]}"


class WireScript(WireClient):
    """``WireScript(url, source, ...)(keys=[...], args=[...])``: what redis-py's
    ``register_script(source)(keys=..., args=...)`` returns, for a URL ``supports`` accepts."""

    def __init__(self, url: str, source: str, *, connect_timeout: float, timeout: float):
        super().__init__(url, connect_timeout=connect_timeout, timeout=timeout)
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis's script id)

    def __call__(self, *, keys: list, args: list):
        reply = self._call(_pack(["EVALSHA", self._sha, len(keys), *keys, *args]))
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = self._call(_pack(["EVAL", self._source, len(keys), *keys, *args]))
        return _raised(reply)
