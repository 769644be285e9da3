"""Opaque, time-sortable ids with a type prefix: ``bkg_01JD…`` (a ULID after the prefix).

48 bits of milliseconds then 80 random bits, in Crockford's base 32: ids sort by creation
time, which keeps B-tree inserts at the right edge of the index. Within one process they are
monotonic (ULID's monotonic mode): an id made in the same millisecond as the previous one is
the previous one plus one, so creation order is id order.
"""

import functools
import re
import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_LENGTH = 26
_lock = threading.Lock()
_last = 0


def ulid() -> str:
    global _last
    with _lock:
        value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
        if value >> 80 <= _last >> 80:  # same millisecond (or the clock went back)
            value = _last + 1
        _last = value
    chars = []
    for _ in range(_ULID_LENGTH):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def is_valid_id(value: object, prefix: str) -> bool:
    """True when ``value`` has the shape of an id we issue with this prefix."""
    return isinstance(value, str) and _id_pattern(prefix).fullmatch(value) is not None


@functools.cache
def _id_pattern(prefix: str) -> re.Pattern:
    return re.compile(f"{re.escape(prefix)}_[{_ALPHABET}]{{{_ULID_LENGTH}}}")


class IdFactory:
    """A named, importable default for model id fields (migrations need to serialise it)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def deconstruct(self):
        return ("bookings.ids.IdFactory", (self.prefix,), {})

    def __eq__(self, other):
        return isinstance(other, IdFactory) and other.prefix == self.prefix

    def __hash__(self):
        return hash(self.prefix)
