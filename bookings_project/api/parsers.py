import json
import math

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class StrictJSONParser(JSONParser):
    """The one gate for request bodies: JSON that every later step can store and re-encode.

    Refused with 400: NaN/Infinity and numbers that overflow to them (``1e400``), strings with
    NUL (PostgreSQL's jsonb cannot hold it) or lone surrogates (not encodable as UTF-8), and
    documents nested more than MAX_DEPTH levels (a RecursionError here or in any later
    json.dumps would otherwise be a 500). A body shorter than its Content-Length (the client's
    connection closed before the rest came) is 400 ``bad_request``: the server reads up to the
    end of the stream and would otherwise act on whatever arrived if it happens to parse.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        body = stream.read()
        request = parser_context.get("request")
        # The middleware has already refused a malformed Content-Length.
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and len(body) < int(declared):
            from .errors import ApiError  # errors imports DRF's settings, which import this

            raise ApiError("The request body ended before its Content-Length.")
        try:
            text = body.decode(encoding)
            data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
        except RecursionError:
            raise ParseError(f"JSON nested more than {MAX_DEPTH} levels deep.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        _check(data)
        return data


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _check_string(value: str) -> None:
    if "\x00" in value:
        raise ParseError("JSON strings must not contain NUL (\\u0000).")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("JSON strings must be valid Unicode (no lone surrogates).") from None


def _check(value) -> None:
    """Depth and string checks, without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
            continue
        if isinstance(item, dict):
            for key in item:
                _check_string(key)
            item = list(item.values())
        if isinstance(item, list):
            if depth > MAX_DEPTH:
                raise ParseError(f"JSON nested more than {MAX_DEPTH} levels deep.")
            stack.extend((child, depth + 1) for child in item)
