"""gunicorn's own error answers, in the API's error envelope.

gunicorn answers a request it cannot parse (a request line over 4094 bytes, a malformed
header or Content-Length, too many headers) itself, before Django sees it, with a small HTML
page. Clients of a JSON API get the envelope instead, with an ``X-Request-Id`` like every
other answer. ``install()`` replaces gunicorn's writer in the worker (the config's
``post_fork`` hook calls it).
"""

import json
import uuid

from gunicorn import util

# status → (code, message). The message never echoes the request: it could not be parsed.
ERRORS = {
    400: ("bad_request", "The request could not be parsed as HTTP."),
    403: ("forbidden", "Forbidden."),
    414: ("uri_too_long", "The request line is too long."),
    417: ("expectation_failed", "Only 'Expect: 100-continue' is supported."),
    431: ("headers_too_large", "Too many request headers, or one too long."),
}
# gunicorn answers a Transfer-Encoding it does not implement with 501; the client sent it,
# and a client's request never gets a 5xx here: 400, saying why.
UNSUPPORTED_CODING = ("bad_request", "Unsupported Transfer-Encoding.")
INTERNAL = ("internal_error", "Something went wrong on our side.")


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    if status_int == 501:
        status_int, reason, (code, message) = 400, "Bad Request", UNSUPPORTED_CODING
    else:
        code, message = ERRORS.get(status_int, INTERNAL)
    body = json.dumps(
        {"success": False, "error": {"code": code, "message": message, "details": {}}},
        separators=(",", ":"),
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-Id: {uuid.uuid4().hex}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    # The worker's handle_error looks the writer up on gunicorn.util at each call.
    util.write_error = write_error
