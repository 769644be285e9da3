"""The README's lifecycle table says what ``bookings.transitions.TRANSITIONS`` says."""

from pathlib import Path

import pytest

from bookings.transitions import ATTENDEE_EDITABLE, TRANSITIONS

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_rows() -> dict[str, list[str]]:
    rows = {}
    for line in README.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] in {
            "confirm",
            "complete",
            "no-show",
            "cancel",
            "reschedule",
            "attendee update",
        }:
            rows[cells[0]] = cells
    return rows


def _statuses(cell: str) -> set[str]:
    return {word.strip() for word in cell.split(",")} - {""}


@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_each_transition_is_documented_as_the_table_says(name):
    transition = TRANSITIONS[name]
    row = _readme_rows()[transition.path]

    assert f"`POST …/{{id}}/{transition.path}`" in row[1]
    assert transition.scope.split(":")[1] in row[1]
    assert _statuses(row[2]) == set(transition.allowed_from)
    assert row[3].startswith(("original CANCELLED", transition.to))
    if transition.unchanged_on:
        assert _statuses(row[4]) == set(transition.unchanged_on)
    assert row[5] == ("yes" if transition.requires_started else "no")
    assert (transition.email or "none") in row[6]


def test_the_attendee_update_is_documented_with_its_statuses():
    assert _statuses(_readme_rows()["attendee update"][2]) == set(ATTENDEE_EDITABLE)
