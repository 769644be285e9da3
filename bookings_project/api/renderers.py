from rest_framework.renderers import JSONRenderer


class Utf8JSONRenderer(JSONRenderer):
    """``application/json; charset=utf-8``, compact, as the contract says."""

    charset = "utf-8"
