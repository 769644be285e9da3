"""``bookings_project.redis_wire``: the admission's script written on the wire answers as
redis-py's client does — the same replies, errors, timeouts and retry — against real
redis-servers of the test's own (restarted, flushed, password-protected, hung)."""

import multiprocessing
import socket
import subprocess
import threading
import time

import pytest
import redis

from bookings.access import _SCRIPT
from bookings_project import redis_wire
from bookings_project.redis_wire import WireScript
from tests.conftest import start_redis_server
from tests.notifications.live import free_port

pytestmark = pytest.mark.redis

ECHO = "return {redis.call('INCR', KEYS[1]), redis.call('GET', KEYS[2]), ARGV[1], false}"


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


def _wire(url: str, source: str = ECHO, timeout: float = 0.5) -> WireScript:
    return WireScript(url, source, connect_timeout=timeout, timeout=timeout)


def test_only_plain_urls_are_spoken_on_the_wire():
    assert redis_wire.supports("redis://127.0.0.1:6379/4")
    assert redis_wire.supports("redis://user:secret@cache.internal:6380")
    assert not redis_wire.supports("rediss://cache.internal:6380/0")  # TLS: redis-py
    assert not redis_wire.supports("unix:///run/redis.sock")
    assert not redis_wire.supports("redis://127.0.0.1:6379/0?socket_timeout=3")


def test_replies_and_errors_are_redis_pys(private_redis):
    url, server = private_redis
    server.set("blob", b"\x00\xff\r\n" * 300)  # binary, longer than one read
    wire = _wire(url)
    reference = redis.Redis.from_url(url).register_script(ECHO)
    server.delete("n")
    ours = wire(keys=["n", "blob"], args=["x"])
    theirs = reference(keys=["n", "blob"], args=["x"])
    assert ours == [1, b"\x00\xff\r\n" * 300, b"x", None]
    assert theirs == [2, *ours[1:]]
    assert wire(keys=["n", "absent"], args=[5]) == [3, None, b"5", None]

    failing = _wire(url, "return redis.call('INCR', KEYS[1])")
    server.set("text", "not a number")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        failing(keys=["text"], args=[])


def test_a_flushed_script_is_sent_again(private_redis):
    url, server = private_redis
    wire = _wire(url)
    server.delete("n")
    assert wire(keys=["n", "b"], args=[1])[0] == 1
    server.script_flush()
    assert wire(keys=["n", "b"], args=[1])[0] == 2  # NOSCRIPT, then EVAL: counted once


def test_the_database_number_and_password_are_used():
    port = free_port()
    process = start_redis_server(port, "--requirepass", "s3cret")
    try:
        wire = _wire(f"redis://:s3cret@127.0.0.1:{port}/7")
        assert wire(keys=["n", "b"], args=[1])[0] == 1
        direct = redis.Redis(port=port, password="s3cret", db=7)
        assert direct.get("n") == b"1"
        assert redis.Redis(port=port, password="s3cret", db=0).get("n") is None
        with pytest.raises(redis.ConnectionError, match="set-up"):
            _wire(f"redis://:wrong@127.0.0.1:{port}/7")(keys=["n", "b"], args=[1])
    finally:
        _stop(process)


def test_a_restart_costs_one_retry_and_an_outage_a_clear_error():
    port = free_port()
    process = start_redis_server(port)
    wire = _wire(f"redis://127.0.0.1:{port}/0", _SCRIPT)
    try:
        assert wire(keys=["c", "e", "t"], args=[65, 60])[0] == 1
        _stop(process)
        with pytest.raises(redis.ConnectionError):
            wire(keys=["c", "e", "t"], args=[65, 60])  # down: refused, at once
        process = start_redis_server(port)
        # The connection made before the restart is broken: replaced once, transparently.
        assert wire(keys=["c", "e", "t"], args=[65, 60])[0] == 1
        assert wire(keys=["c", "e", "t"], args=[65, 60])[0] == 2
    finally:
        _stop(process)


def test_a_hung_server_costs_one_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    wire = _wire(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        wire(keys=["c"], args=[])
    elapsed = time.monotonic() - started
    assert 0.95 < elapsed < 1.9  # one timeout, no retry (a second would pass 2)
    assert len(accepted) == 1
    listener.close()


def test_garbage_is_a_connection_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def answer():
        conn, _ = listener.accept()
        conn.recv(1000)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    wire = _wire(f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
    with pytest.raises(redis.ConnectionError, match="protocol"):
        wire(keys=["c"], args=[])
    listener.close()


def _child_calls(wire: WireScript, out) -> None:
    out.put([wire(keys=["n", "b"], args=[1])[0] for _ in range(50)])


def test_threads_and_forked_children_use_connections_of_their_own(private_redis):
    url, server = private_redis
    server.delete("n")
    wire = _wire(url)
    assert wire(keys=["n", "b"], args=[1])[0] == 1  # the parent's connection, made first
    counts: list[int] = []

    def calls():
        counts.extend(wire(keys=["n", "b"], args=[1])[0] for _ in range(200))

    threads = [threading.Thread(target=calls) for _ in range(4)]
    fork = multiprocessing.get_context("fork")
    out = fork.Queue()
    children = [fork.Process(target=_child_calls, args=(wire, out)) for _ in range(2)]
    for worker in [*threads, *children]:
        worker.start()
    child_counts = [out.get(timeout=30) for _ in children]
    for worker in [*threads, *children]:
        worker.join(timeout=30)
    everything = sorted([1, *counts, *(n for got in child_counts for n in got)])
    # Every reply is its own command's: no two callers shared a connection's replies.
    assert everything == list(range(1, 1 + 1 + 4 * 200 + 2 * 50))
    assert wire(keys=["n", "b"], args=[1])[0] == 902  # the parent's connection still works
