#!/usr/bin/env python
"""Open-loop HTTP load at a fixed rate, wrk2's model, stdlib only.

    python bench/open_loop.py URL --rate 2000 [--seconds 10] [--warmup 2] [--connections 8]
        [--header 'Authorization: Bearer …']

Request ``i`` is due at ``start + i / rate`` and goes out on connection ``i % connections``
as soon as that connection is free. Its latency runs from when it was *due*, not from when it
was sent: a server that stalls delays the requests queued behind, and they count that wait
(no coordinated omission, which a closed loop such as wrk's hides). Connections are HTTP/1.1
keep-alive; when the server closes one after its response (gunicorn's sync workers close
every one), the next request opens a new one, and that connect is part of its latency.

Prints one line ``OPEN_LOOP {json}``: the rate asked and achieved, latency p50 / p90 / p99 /
max (ms, from the due time), the generator's own lag (from when a request could go, due and
its connection free, to when it went: timers wake up to a millisecond late), errors and
non-2xx responses, and the CPU the generator used (it shares the machine with the server).
"""

import argparse
import asyncio
import json
import math
import resource
import time
from urllib.parse import urlsplit


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; ``exchange`` sends a request and waits for its response."""

    def __init__(self):
        self.transport = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        self._check(eof=False)

    def eof_received(self):
        self.closed = True
        self._check(eof=True)

    def connection_lost(self, exc):
        self.closed = True
        self._check(eof=True)

    def _check(self, eof: bool) -> None:
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if eof:
                self.waiter.set_exception(ConnectionError("closed before a response"))
            return
        head = bytes(self.buffer[:end]).lower()
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
        if length is None and not eof:
            return  # no length: the body runs to the end of the connection
        size = end + 4 + (length if length is not None else len(self.buffer) - end - 4)
        if len(self.buffer) < size:
            if eof:
                self.waiter.set_exception(ConnectionError("closed inside a response"))
            return
        del self.buffer[:size]
        close = eof or b"\r\nconnection: close" in head
        self.waiter.set_result((int(head[9:12]), close))

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


async def run(args) -> dict:
    url = urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    headers = "".join(f"{h}\r\n" for h in args.header)
    path = url.path + (f"?{url.query}" if url.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{headers}\r\n".encode()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1
    measured_from = start + args.warmup
    stop = measured_from + args.seconds
    total = int((stop - start) * args.rate)
    latencies: list[float] = []
    lags: list[float] = []
    outcome = {"errors": 0, "non2xx": 0, "sample": ""}

    async def lane(first: int) -> None:
        conn = None
        free = start  # when this connection's previous request finished
        for i in range(first, total, args.connections):
            due = start + i / args.rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            sent = loop.time()
            lag = sent - max(due, free)  # ours alone: not the wait for a busy connection
            try:
                if conn is None or conn.closed:
                    _, conn = await loop.create_connection(Connection, host, port)
                status, close = await conn.exchange(request)
            except OSError as exc:
                status, close = 0, True
                outcome["sample"] = outcome["sample"] or repr(exc)
            finished = free = loop.time()
            if close and conn is not None:
                conn.transport.close()
                conn = None
            if due < measured_from:
                continue
            latencies.append(finished - due)
            lags.append(lag)
            if status == 0:
                outcome["errors"] += 1
            elif not 200 <= status < 300:
                outcome["non2xx"] += 1

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    lanes = [asyncio.ensure_future(lane(j)) for j in range(args.connections)]
    _, unfinished = await asyncio.wait(lanes, timeout=stop + args.timeout - loop.time())
    for task in unfinished:  # a server that stopped answering: what is left counts as lost
        task.cancel()
    ended = loop.time()
    due = total - math.ceil((measured_from - start) * args.rate)
    outcome["errors"] += max(0, due - len(latencies))
    used = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    lags.sort()
    return {
        "rate": args.rate,
        "achieved": len(latencies) / (max(ended, stop) - measured_from),
        "requests": len(latencies),
        "connections": args.connections,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p90_ms": _percentile(latencies, 90) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "lag_p50_ms": _percentile(lags, 50) * 1000,
        "lag_p99_ms": _percentile(lags, 99) * 1000,
        "late_end_s": max(0.0, ended - stop),
        "cpu_percent": 100
        * (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime)
        / (ended - start),
        **outcome,
    }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="at the same rate, not measured")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the last responses"
    )
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    started = time.monotonic()
    result = asyncio.run(run(args))
    result["wall_s"] = time.monotonic() - started
    print("OPEN_LOOP " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
