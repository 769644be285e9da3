"""Value rules, one function each, shared by the API fields, the admin and the services.

Each raises Django's ``ValidationError`` with a message for people; the API's fields
(``bookings.fields``) and the admin's forms show it as it is.
"""

import re
import zoneinfo
from datetime import UTC, date, datetime
from functools import cache

import idna
import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_date, parse_datetime

from .ids import is_valid_id

# RFC 3339 shapes (``T`` or a space between date and time). The offset is optional in the
# pattern only so that a naive time gets a message of its own. Checked before parsing:
# Python's ``fromisoformat`` (under Django's parsers) also takes ISO week dates, the basic
# format (``20261201``) and odd digit runs, and answers a naive midnight for a bare date.
# re.ASCII: "\d" is 0-9 only, not every digit Unicode knows (Arabic-Indic, fullwidth).
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$", re.ASCII
)
_TIME_EXPECTED = "Expected an ISO 8601 time with an offset, like 2026-12-01T15:00:00Z."


def parse_aware_datetime(value: str) -> datetime:
    """The one parser of times, for bodies and query strings: RFC 3339 with an offset, in UTC."""
    value = value.strip()
    try:
        moment = parse_datetime(value) if _DATETIME.match(value) else None
    except ValueError:  # the right shape, an impossible value: 25:00, 30 February
        moment = None
    if moment is None:
        raise ValidationError(_TIME_EXPECTED, code="invalid")
    if moment.tzinfo is None:
        raise ValidationError("The time must carry an offset ('Z' or '+02:00').", code="naive")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValidationError("Out of the supported range of dates.", code="invalid") from None


def utc_iso(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as DRF renders it (microseconds only when there are some)."""
    if value.tzinfo is not UTC:  # as the database's rows already are
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def is_iso_date(value: str) -> bool:
    return bool(_DATE.match(value.strip()))


def parse_iso_date(value: str) -> date:
    """A calendar date, ``2026-12-01``."""
    try:
        day = parse_date(value.strip()) if is_iso_date(value) else None
    except ValueError:
        day = None
    if day is None:
        raise ValidationError(
            "Expected an ISO 8601 date (2026-12-01) or time with offset.", code="invalid"
        )
    return day


def parse_prefixed_id(value: str, prefix: str) -> str:
    """One of our ids of one type: the prefix, ``_``, then a 26-character ULID."""
    if not is_valid_id(value, prefix):
        raise ValidationError(
            f"Not a valid id: expected '{prefix}_' and 26 characters.", code="invalid"
        )
    return value


@cache
def _timezones() -> frozenset[str]:
    # "localtime" is the host's own zone file, not an IANA name; "Factory" is a placeholder.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "Factory"}


def validate_timezone(value: str) -> None:
    if value not in _timezones():
        shown = value if len(value) <= 64 else f"{value[:64]}…"  # not a whole 200 KB back
        raise ValidationError(f"'{shown}' is not an IANA time zone name.", code="invalid")


def validate_email_address(value: str) -> None:
    """An address an email can be sent to, and the one it will be sent to: Django's rule,
    and an international domain valid in IDNA 2008 (with UTS #46's mapping, as browsers and
    mail programs read it) and written in its own canonical form.

    Django's validator takes any character from U+00A1 up in a domain; its SMTP backend then
    encodes the domain with the older IDNA 2003, which folds some domains into others:
    ``example.com`` written in fullwidth letters (U+FF41…) into ``example.com``, ``\ufb00.com``
    (a ligature) into ``ff.com``, ``straße.de`` into ``strasse.de`` (another domain, under
    IDNA 2008). The booking would show one address and its email go to another. So a domain
    that is not its own canonical form (any case aside) is refused, naming that form; the
    email goes to the domain's IDNA 2008 form (``notifications.emails.ascii_address``). A
    domain with no IDNA form at all (a direction mark, a label over 63 characters once
    encoded) could never be sent to, and is refused too.
    """
    validate_email(value)
    domain = value.rpartition("@")[2]
    if domain.startswith("[") or domain.isascii():  # an address literal, or ASCII already
        return
    try:
        canonical = idna.decode(idna.encode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError):
        raise ValidationError("Enter a valid email address.", code="invalid") from None
    if canonical != domain.lower():
        raise ValidationError(
            f"Write the domain as {canonical}: the same domain in its standard form, "
            "the one the email is sent to.",
            code="invalid",
        )


# "+", a digit, then digits and separators, ending on a digit: separators only between digits.
_PHONE_ALLOWED = re.compile(r"^\+\d(?:[0-9 ().\-]*\d)?$", re.ASCII)
_PHONE_RULE = (
    "Enter an international number: '+', then 7 to 15 digits "
    "(spaces, dashes, dots or parentheses allowed between them)."
)


def normalize_phone(value: str) -> str:
    """``+1-555-0123`` → ``+15550123``: ``+`` then 7 to 15 digits, separators between them.

    The contract's rule decides what is accepted (the characters, and 7 to 15 digits); the
    number is normalised by ``phonenumbers`` to ``+`` and its digits, as written: no E.164
    reformatting, which would drop a national trunk zero the attendee typed (``+44 (0)20…``).
    A country calling code that does not exist (``+999…``) is within the contract's rule and
    accepted.
    """
    value = value.strip()
    digits = phonenumbers.normalize_digits_only(value)
    if not _PHONE_ALLOWED.match(value) or not 7 <= len(digits) <= 15:
        raise ValidationError(_PHONE_RULE, code="invalid")
    return "+" + digits


# Control characters (Unicode's Cc: C0, DEL and C1) are invisible where a name or a reason is
# shown, and break what it is written into: an email's headers, a calendar file, a log line.
# A multi-line text keeps tab and line breaks. NUL never reaches the API's fields (the JSON
# parser refuses it); the admin's forms refuse it here.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
CONTROL_CHARACTERS_BUT_LINES = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_CONTROL = {
    False: re.compile(f"[{CONTROL_CHARACTERS}]"),
    True: re.compile(f"[{CONTROL_CHARACTERS_BUT_LINES}]"),
}


def control_characters_refused(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` is refused for its control characters, or None: the API's fields and the
    admin's forms say it in the same words."""
    if _CONTROL[multiline].search(value) is None:
        return None
    return "Control characters are not allowed" + (
        " (tab and line breaks are)." if multiline else "."
    )


def validate_single_line_text(value: str) -> None:
    """A name: no control character at all."""
    if message := control_characters_refused(value):
        raise ValidationError(message, code="control_characters")


def validate_multiline_text(value: str) -> None:
    """A reason: tab and line breaks allowed, no other control character."""
    if message := control_characters_refused(value, multiline=True):
        raise ValidationError(message, code="control_characters")
