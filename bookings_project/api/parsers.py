import codecs
import json
import math

from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
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
        except UnicodeDecodeError:
            raise ParseError("JSON parse error - the body is not valid UTF-8.") from None
        except ValueError as exc:
            if str(exc).startswith("Unexpected UTF-8 BOM"):
                message = "JSON parse error - the body starts with a byte order mark (BOM)."
                raise ParseError(message) from None
            if "integer string conversion" in str(exc):
                # Python's own text would tell the client to call sys.set_int_max_str_digits().
                message = "JSON parse error - number out of range (over 4300 digits)."
                raise ParseError(message) from None
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


# --- Which parser reads a body ------------------------------------------------------------------


def is_utf8(charset: str | None) -> bool:
    """No charset (JSON's own default), or a name of UTF-8 (``utf-8``, ``UTF8``, …)."""
    if charset is None:
        return True
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


class StrictContentNegotiation(DefaultContentNegotiation):
    """JSON in UTF-8, named exactly, is the only body read; anything else is 415.

    DRF's default matches a request's ``Content-Type`` as if it were an ``Accept`` range, so a
    body declared ``*/*`` or ``application/*`` was parsed as JSON; and Django decodes with the
    declared ``charset``, so ``application/json; charset=latin-1`` stored UTF-8 names as
    mojibake. The contract is ``application/json; charset=utf-8``: a body's media type is its
    type, never a range, and a charset other than UTF-8 (or one Python does not know) is
    refused like any other type. Names are case-insensitive; other parameters are ignored.
    """

    def select_parser(self, request, parsers):
        content_type = request.content_type or ""
        if len(content_type) > self.max_media_type_length:
            return None  # DRF's own bound: refused rather than parsed
        media_type, params = parse_header_parameters(content_type)  # the type lower-cased
        if not is_utf8(params.get("charset")):
            return None
        return next((parser for parser in parsers if parser.media_type == media_type), None)
