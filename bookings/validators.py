"""Value checks shared by the API serializers, the admin and the services."""

import re
import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError

# "+", a digit, then digits and separators, ending on a digit: separators only between digits.
_PHONE_ALLOWED = re.compile(r"^\+\d(?:[0-9 ().\-]*\d)?$")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _timezones():
        raise ValidationError(f"'{value}' is not an IANA time zone name.", code="invalid")


def normalize_phone(value: str) -> str:
    """``+1-555-0123`` → ``+15550123``: ``+`` then 7 to 15 digits, separators between them."""
    value = value.strip()
    digits = re.sub(r"\D", "", value)
    if not _PHONE_ALLOWED.match(value) or not 7 <= len(digits) <= 15:
        raise ValidationError(
            "Enter an international number: '+', then 7 to 15 digits "
            "(spaces, dashes, dots or parentheses allowed between them).",
            code="invalid",
        )
    return "+" + digits
