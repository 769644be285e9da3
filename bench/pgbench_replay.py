"""Replay the SQL of one real create with pgbench: how fast could the database alone go?

``capture`` runs inside Django with the server's settings and database (``python -m
bench.pgbench_replay capture '{json}'``): it sends one create through Django's own WSGI
handler, exactly as gunicorn calls it (the request signals included), and records what went
over the wire with libpq's trace (``PQtrace``): every statement in the order sent, with the
BEGIN, SAVEPOINT, RELEASE and COMMIT that psycopg and Django add. The application binds its
values on the server and prepares a statement it repeats (``server_side_binding``,
``prepare_threshold``): a statement sent that way is taken, with its values written in, from
what Django executed (``execute_wrapper``). A warm-up create first opens the connection, as a
worker's first request would.

``script`` turns those statements into a pgbench script in which each transaction is a new
booking: the booking id and calendar UID get a unique number (``:bid``), every timestamp
tied to the slot becomes ``to_timestamp(:ts …)`` at a new 15-minute time, and the statements
naming the chosen host pick one of the 10 hosts by round (``\\if``), as the HTTP create's
slots do (see bench/wrk_lua.py). pgbench runs it with ``-M prepared``: each statement parsed
and planned once per connection, as the application's are after their fifth use.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

_TRACE_LINE = re.compile(rb"^([FB])\t(\d+)\t(\w+)", re.M)
_TIMESTAMP = re.compile(r"'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\+00(?::00)?)'::timestamptz")
_COLON_NAME = re.compile(r"(?<!:):(?=[A-Za-z_])")
_NEAR = timedelta(days=7)  # a timestamp this close to the slot is derived from it


def _wsgi_call(app, *, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    import io
    from wsgiref.util import setup_testing_defaults

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    setup_testing_defaults(environ)
    statuses = []
    result = app(environ, lambda status, _headers, exc_info=None: statuses.append(status))
    try:
        content = b"".join(result)
    finally:
        result.close()  # request_finished, as a WSGI server sends it
    return int(statuses[0].split()[0]), content


def _queries(trace: bytes, executed: list[str]) -> list[str]:
    """The SQL the client sent, in order, from a PQtrace log: a simple-protocol Query as its
    text; an extended-protocol statement (a Bind: server-side binding, prepared or not) as the
    next of ``executed``, the statements Django ran with their values written in."""
    queries = []
    executed = list(executed)
    position = 0
    while match := _TRACE_LINE.search(trace, position):
        direction, length, kind = match[1], int(match[2]), match[3].decode()
        position = match.end()
        if direction != b"F":
            continue
        if kind == "Bind":
            queries.append(executed.pop(0))
            continue
        if kind != "Query":
            continue  # Parse, Describe, Execute, Sync, Terminate: part of a Bind's statement
        start = position + 3  # past the tab, the space and the quote
        text = trace[start : start + length - 5].decode()  # the length counts itself and a NUL
        position = start + length - 5
        if executed and executed[0] == text:
            executed.pop(0)  # a statement without values (a savepoint) goes as a Query
        queries.append(text)
    if executed:
        raise SystemExit(f"Statements not found in the trace: {executed[:3]}")
    return queries


def capture(*, secret: str, event_type: str, times: list[str]) -> dict:
    """Two creates at ``times``; the second's SQL as sent, and the booking it made."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from psycopg import ClientCursor, pq

    from bookings.models import Booking

    app = WSGIHandler()
    headers = {"Authorization": f"Bearer {secret}"}

    def create(at: str) -> tuple[int, bytes]:
        body = {
            "event_type_id": event_type,
            "requested_time": at,
            "attendee": {"name": "Wrk Bench", "email": "wrk-bench@example.com"},
        }
        return _wsgi_call(app, path="/v1/bookings", body=json.dumps(body).encode(), headers=headers)

    status, content = create(times[0])
    if status != 201:
        raise SystemExit(f"The warm-up create answered {status}: {content[:300]!r}")
    raw = connection.connection
    literal = ClientCursor(raw)
    executed = []

    def record(execute, sql, params, many, context):
        # As the simple protocol would send it: the values written into the text.
        executed.append(literal.mogrify(sql, params) if params else sql)
        return execute(sql, params, many, context)

    fd, path = tempfile.mkstemp(prefix="wrk_trace_")
    try:
        raw.pgconn.trace(fd)
        raw.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            with connection.execute_wrapper(record):
                status, content = create(times[1])
        finally:
            raw.pgconn.untrace()  # closes fd
        trace = open(path, "rb").read()  # noqa: SIM115
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        os.unlink(path)
    if status != 201 or connection.connection is not raw:
        raise SystemExit(f"The traced create answered {status} or reconnected: {content[:300]!r}")
    booking = Booking.objects.get(pk=json.loads(content)["booking"]["id"])
    return {
        "queries": _queries(trace, executed),
        "booking_id": booking.id,
        "ical_uid": booking.ical_uid,
        "start": booking.start_time.isoformat(),
        "host": booking.assigned_to_id,
    }


def script(captured: dict, *, hosts: list[str]) -> str:
    """The pgbench script; it needs ``-D`` n=0, clients, phase (a number per run of it over
    one capture), start (epoch seconds of its window) and slots (15-minute times in it)."""
    slot = datetime.fromisoformat(captured["start"])
    booking_id, uid, host = captured["booking_id"], captured["ical_uid"], captured["host"]

    def timestamp(match: re.Match) -> str:
        at = datetime.fromisoformat(match[1])
        if abs(at - slot) > _NEAR:
            return match[0]  # "now": when the booking was made, and the like
        offset = int((at - slot).total_seconds())
        return f"to_timestamp(:ts::bigint {'-' if offset < 0 else '+'} {abs(offset)})"

    lines = [
        "-- The SQL of one create as the application sent it, a new booking per transaction.",
        "\\set n :n + 1",
        "\\set u (:n - 1) * :clients + :client_id",
        "\\set bid 1000000000000000 + :phase * 10000000000 + :u",
        "\\set round :u / :slots",
        "\\set ts :start + (:u % :slots) * 900",
    ]
    for query in captured["queries"]:
        # pgbench reads ":name" as a variable even inside a literal ('bkg_…:created'): split
        # such a literal there. (The SQL's own casts are "::type"; nothing else is ":letter".)
        query = _COLON_NAME.sub(":' || '", query)
        # Inside a quoted literal: closed, the number appended, reopened ('…' || :bid || '…'),
        # so that -M prepared can bind :bid as a parameter ($n) of its own.
        query = query.replace(booking_id, f"{booking_id[:14]}' || :bid::text || '")
        query = query.replace(uid, f"{uid[:10]}' || :bid::text || '{uid[26:]}")
        query = _TIMESTAMP.sub(timestamp, query)
        if slot.strftime("%Y-%m-%d") in query:
            raise SystemExit(f"A slot time the replay cannot vary is left in: {query[:300]}")
        if host not in query:
            lines.append(f"{query};")
            continue
        for n, other in enumerate(hosts):
            lines.append(f"\\{'if' if n == 0 else 'elif'} :round = {n}")
            lines.append(f"{query.replace(host, other)};")
        lines.append("\\endif")
    return "\n".join(lines) + "\n"


def run(
    script_path: Path, *, database_url: str, clients: int, threads: int, seconds: int, **defines
) -> dict:
    """pgbench with the script, ``-D`` for each define; its tps and any failure."""
    # Prepared, as the application's statements are (server-side binding, prepare_threshold).
    command = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads)]
    command += ["-T", str(seconds), "-D", "n=0", "-D", f"clients={clients}"]
    for name, value in defines.items():
        command += ["-D", f"{name}={value}"]
    command += ["-f", str(script_path), database_url]
    done = subprocess.run(command, capture_output=True, text=True)
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    failed = done.returncode != 0 or "aborted" in done.stderr
    return {
        "tps": float(tps[1]) if tps else 0.0,
        "failed": failed,
        "error": done.stderr.strip()[:300] if failed else "",
        "output": f"$ {' '.join(command)}\n{done.stdout}{done.stderr}",
    }


def main() -> None:
    import django

    django.setup()
    arguments = json.loads(sys.argv[2])
    print("WRK_CAPTURE " + json.dumps(capture(**arguments)), flush=True)


if __name__ == "__main__":
    main()
