"""The layout's promises, read from the source: arrows point one way, the domain knows no
HTTP, and every domain error has exactly one HTTP status."""

import ast
from pathlib import Path

import pytest
from rest_framework.test import APIRequestFactory

from bookings import errors
from bookings.viewsets import ERROR_STATUSES
from bookings_project.api.errors import exception_handler

ROOT = Path(__file__).resolve().parent.parent
# The domain: business rules and reads, callable from the API, the admin, commands and tasks.
DOMAIN_MODULES = [
    "bookings/errors.py",
    "bookings/services.py",
    "bookings/selectors.py",
    "bookings/routing.py",
    "bookings/idempotency.py",
    "bookings/models.py",
    "bookings/transitions.py",
    "notifications/services.py",
]
HTTP_PACKAGES = ("rest_framework", "drf_spectacular", "django.http", "django.views")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_the_domain_imports_nothing_of_http(module):
    http = {name for name in _imports(ROOT / module) if name.startswith(HTTP_PACKAGES)} | {
        name for name in _imports(ROOT / module) if name.startswith("bookings_project.api")
    }

    assert http == set(), f"{module} imports {sorted(http)}"


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bookings_project/api").glob("*.py"))
)
def test_the_plumbing_knows_nothing_of_the_domain(module):
    domain = {
        name
        for name in _imports(ROOT / module)
        if name.split(".")[0] in {"bookings", "notifications"}
    }

    assert domain == set(), f"{module} imports {sorted(domain)}"


def _subclasses(cls) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_domain_error_has_its_own_status():
    assert _subclasses(errors.BookingsError) | {errors.BookingsError} == set(ERROR_STATUSES)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.ValidationFailed({"requested_time": "Too soon."}), 400, "validation_error"),
        (errors.FieldNotUpdatable(details={"fields": ["status"]}), 400, "field_not_updatable"),
        (errors.InvalidCursor(), 400, "invalid_cursor"),
        (errors.InvalidIdempotencyKey(), 400, "invalid_idempotency_key"),
        (errors.NotFound("Booking not found."), 404, "not_found"),
        (
            errors.InvalidTransition(details={"status": "CANCELLED", "allowed_from": []}),
            409,
            "invalid_transition",
        ),
        (errors.BookingNotStarted(), 409, "booking_not_started"),
        (errors.SlotUnavailable(), 409, "slot_unavailable"),
        (errors.IdempotencyRequestInProgress(), 409, "idempotency_request_in_progress"),
        (errors.IdempotencyKeyReused(), 422, "idempotency_key_reused"),
    ],
)
def test_the_handler_answers_each_domain_error_in_the_envelope(error, status, code):
    request = APIRequestFactory().get("/v1/bookings")

    response = exception_handler(error, {"request": request, "view": None})

    assert response.status_code == status
    assert response.data == {
        "success": False,
        "error": {"code": code, "message": error.message, "details": error.details},
    }
    if isinstance(error, errors.IdempotencyRequestInProgress):
        assert response["Retry-After"] == "1"
    else:
        assert "Retry-After" not in response


def test_validation_failed_details_map_fields_to_message_lists():
    error = errors.ValidationFailed({"a": "One.", "b": ["Two.", "Three."]})

    assert error.details == {"a": ["One."], "b": ["Two.", "Three."]}
    assert error.code == "validation_error"
