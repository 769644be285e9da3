"""Assertions shared by the API tests: the error envelope, the success envelope."""

import re

UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def assert_error(response, status: int, code: str, *, details: set[str] | None = None) -> dict:
    """The response is ``status`` in the error envelope with ``code``; return its ``error``.

    ``details``, when given, is the exact set of keys ``error.details`` must have.
    """
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"success", "error"}, body
    assert body["success"] is False
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["details"], dict), error
    if details is not None:
        assert set(error["details"]) == details, error["details"]
    return error


def assert_ok(response, resource: str, status: int = 200) -> dict:
    """The response is ``status`` in the success envelope; return the whole body."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert body["success"] is True, body
    assert resource in body, body
    return body
