"""What gunicorn answers itself, before Django sees the request, is in the envelope too.

The repo's production config (``bookings_project/gunicorn_conf.py``) serves; each request
below is one gunicorn refuses to parse, sent over a raw socket.
"""

import json
import os
import socket

import pytest

from tests.notifications.live import BIN, free_port, start, stop, wait_listening


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bookings_project.settings.local",
        DEBUG="false",
        DATABASE_URL="",  # nothing here reaches a view: no database is opened
        WEB_CONCURRENCY="1",
        GUNICORN_BIND=f"127.0.0.1:{port}",
    )
    args = [str(BIN / "gunicorn"), "-c", "python:bookings_project.gunicorn_conf"]
    args.append("bookings_project.wsgi")
    process = start(args, env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")

    wait_listening(process, port)
    yield port
    stop(process)


def raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


HOST = b"Host: 127.0.0.1\r\n"


def request(line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    return line + b"\r\n" + HOST + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


MANY_HEADERS = [b"X-H%d: 1" % i for i in range(150)]
BAD_REQUESTS = {
    "a request line over 4094 bytes": (
        request(b"GET /v1/bookings?q=" + b"a" * 9000 + b" HTTP/1.1"),
        414,
        "uri_too_long",
    ),
    "a Content-Length that is not a number": (
        request(b"POST /v1/bookings HTTP/1.1", b"Content-Length: abc"),
        400,
        "bad_request",
    ),
    "two different Content-Lengths": (
        request(b"POST /v1/bookings HTTP/1.1", b"Content-Length: 1", b"Content-Length: 2"),
        400,
        "bad_request",
    ),
    "a garbage request line": (b"\x16\x03\x01 hello\r\n\r\n", 400, "bad_request"),
    "a header without a colon": (
        request(b"GET /v1/bookings HTTP/1.1", b"Broken header"),
        400,
        "bad_request",
    ),
    "a header too long": (
        request(b"GET /v1/bookings HTTP/1.1", b"X-Big: " + b"b" * 9000),
        431,
        "headers_too_large",
    ),
    "too many headers": (
        request(b"GET /v1/bookings HTTP/1.1", *MANY_HEADERS),
        431,
        "headers_too_large",
    ),
    "an unsupported Transfer-Encoding": (
        request(b"POST /v1/bookings HTTP/1.1", b"Transfer-Encoding: gzip"),
        400,
        "bad_request",
    ),
    "an unknown HTTP version": (request(b"GET /v1/bookings HTTP/7.1"), 400, "bad_request"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_gunicorn_refuses_unparsable_requests_in_the_envelope(server, name):
    sent, expected_status, expected_code = BAD_REQUESTS[name]
    status, headers, body = raw(server, sent)
    assert status == expected_status
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert len(headers["x-request-id"]) == 32
    assert int(headers["content-length"]) == len(body)
    payload = json.loads(body)
    assert payload == {
        "success": False,
        "error": {"code": expected_code, "message": payload["error"]["message"], "details": {}},
    }
    assert payload["error"]["message"]
    assert b"<html" not in body.lower()


def test_a_parsable_request_still_reaches_django(server):
    status, _, body = raw(server, request(b"GET /healthz HTTP/1.1"))
    assert status == 200
    assert json.loads(body) == {"success": True, "status": "ok"}
