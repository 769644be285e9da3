"""JSON out: ``application/json; charset=utf-8``, compact, as the contract says.

orjson writes it several times faster than the standard library. What orjson refuses, the
standard library writes the same way DRF always did: integers beyond 64 bits (a client may
store one in ``metadata``), lazy strings, Decimals and other types DRF's encoder knows.
"""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

# Non-string keys as DRF's json.dumps writes them. Datetimes written by orjson as DRF's encoder
# writes them (``isoformat()``, "+00:00" as "Z", microseconds only when there are some), ten
# times faster: the output serializers leave a booking's times as UTC datetimes for this. The
# one difference, an offset with seconds (a zone's local mean time, before 1900), is never
# rendered: the serializers convert every time to UTC first.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def _default(value):
    return JSONEncoder().default(value)


def json_bytes(data) -> bytes:
    try:
        return orjson.dumps(data, default=_default, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, say
        return JSONRenderer().render(data)


class Utf8JSONRenderer(JSONRenderer):
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return json_bytes(data)


#: What every JSON response of ours says it is.
JSON_CONTENT_TYPE = f"{Utf8JSONRenderer.media_type}; charset={Utf8JSONRenderer.charset}"
