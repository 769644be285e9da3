"""``BookingCreateSerializer.kwargs_for``: a create's body validated without the serializer's
machinery when it is plainly valid, and by the serializer otherwise, with the same outcome
as the serializer alone for any body: the same arguments, or the same errors."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from bookings.serializers import AttendeeInputSerializer, BookingCreateSerializer
from tests.conftest import instances_counted

from .create_helpers import create_body, in_days

pytestmark = pytest.mark.django_db


def _serializers_own(payload, team):
    serializer = BookingCreateSerializer(data=payload, context={"team": team})
    if serializer.is_valid():
        return "valid", serializer.service_kwargs()
    return "invalid", serializer.errors


def _kwargs_fors(payload, team):
    try:
        return "valid", BookingCreateSerializer.kwargs_for(payload, team=team)
    except serializers.ValidationError as exc:
        return "invalid", exc.detail


def _outcome(result):
    """Errors compared with their codes (ErrorDetail's == compares the text only)."""
    verdict, value = result
    if verdict == "valid":
        return verdict, value
    return verdict, serializers.as_serializer_error(serializers.ValidationError(value))


@pytest.fixture
def serializer_built(monkeypatch) -> list:
    return instances_counted(monkeypatch, BookingCreateSerializer)


def test_a_plainly_valid_body_builds_no_serializer(team, event_type, hosts, serializer_built):
    bodies = [
        create_body(event_type, in_days(2)),
        create_body(
            event_type,
            in_days(2),
            attendee={
                "name": "Ada Lovelace",
                "email": "Ada@Example.com",
                "phone": "+44 20 7946 0958",  # normalised by the field, as the serializer does
                "timezone": "Europe/London",
            },
            assigned_to_id=hosts[1].id,
            custom_fields={"topic": "engines"},
            metadata={"source": "test", "n": [1, 2]},
        ),
        create_body(event_type, in_days(2), assigned_to_id=None),
        create_body(
            event_type,
            in_days(2),
            attendee={"name": "Ada", "email": "ada@example.com", "phone": None, "timezone": ""},
        ),
    ]
    for body in bodies:
        kwargs = BookingCreateSerializer.kwargs_for(body, team=team)
        assert ("valid", kwargs) == _serializers_own(body, team)
    assert serializer_built == [1] * len(bodies)  # only the comparisons' own
    assert kwargs["attendee"].phone == ""


def test_an_unknown_event_type_is_looked_up_once(team, other_team, django_assert_num_queries):
    from tests.factories import EventTypeFactory

    theirs = EventTypeFactory(team=other_team)
    body = create_body(theirs, in_days(2))
    with django_assert_num_queries(1), pytest.raises(serializers.ValidationError) as raised:
        BookingCreateSerializer.kwargs_for(body, team=team)
    assert _outcome(("invalid", raised.value.detail)) == _outcome(_serializers_own(body, team))


def test_the_serializer_has_no_rule_the_first_pass_would_skip():
    # kwargs_for's first pass runs the declared fields and does what validate_event_type_id
    # does; a new validate method on either serializer must be added there too.
    for serializer, methods in (
        (BookingCreateSerializer, {"validate_event_type_id"}),
        (AttendeeInputSerializer, set()),
    ):
        own = {
            name
            for klass in serializer.__mro__
            if klass.__module__.startswith("bookings")
            for name in vars(klass)
            if name.startswith("validate")
        }
        assert own == methods, serializer
        assert serializer.validate is serializers.Serializer.validate


texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "Ada", " Ada", "Ada ", "A\x07da", "A\ud800", "x" * 201, "x" * 200]),
)
emails = st.one_of(
    texts,
    st.sampled_from(
        [
            "ada@example.com",
            "Ada@Example.COM",
            " ada@example.com",
            "ada@example",
            "ada@@example.com",
            "a" * 250 + "@example.com",
            "ada@exam\u00e9ple.com",
        ]
    ),
)
phones = st.one_of(
    st.none(),
    texts,
    st.sampled_from(["", "+44 20 7946 0958", "+1-202-555-0143", "0207 946 0958", "+12", "+4420"]),
)
timezones = st.one_of(
    st.none(), texts, st.sampled_from(["", "Europe/London", "UTC", "Mars/Olympus", "localtime"])
)
times = st.one_of(
    st.sampled_from(
        [
            "2030-01-02T10:00:00Z",
            "2030-01-02T10:00:00+02:00",
            "2030-01-02T10:00:00",
            "2030-01-02",
            " 2030-01-02T10:00:00Z",
            "9999-12-31T23:59:59-23:59",
        ]
    ),
    st.text(max_size=8),
    st.integers(),
    st.none(),
)
json_objects = st.one_of(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.just({"big": "x" * 17_000}),
    st.text(max_size=3),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4))


def _mostly(data, valid, anything, label: str):
    """A valid value four times in five, else anything: most bodies are then valid but for a
    field or two, where a first pass that takes too much would show."""
    return data.draw(anything if data.draw(st.integers(0, 4)) == 0 else valid, label=label)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_body_has_the_serializers_outcome(team, event_type, other_team, hosts, data):
    valid_ids = st.just(event_type.id)
    ids = st.one_of(
        st.sampled_from([f" {event_type.id}", event_type.id.lower(), "evt_" + "0" * 26, ""]),
        texts,
        scalars,
    )
    valid_members = st.sampled_from([hosts[0].id, hosts[2].id, None])
    members = st.one_of(
        st.sampled_from([f"{hosts[0].id} ", "mem_" + "0" * 26, "mem_x"]), texts, scalars
    )
    valid_times = st.sampled_from(["2030-01-02T10:00:00Z", "2030-01-02T10:00:00+02:00"])
    valid_texts = st.sampled_from(["Ada", "Ada Lovelace", "x" * 200, "Ådä Ł"])
    valid_emails = st.sampled_from(["ada@example.com", "Ada@Example.COM", "a.b+c@d.example"])
    valid_phones = st.sampled_from([None, "", "+44 20 7946 0958", "+1-202-555-0143"])
    valid_zones = st.sampled_from([None, "", "Europe/London", "UTC"])
    valid_objects = st.sampled_from([{}, {"a": 1}, {"nested": {"b": [1, "x"]}}])

    attendee = {
        "name": _mostly(data, valid_texts, texts, "name"),
        "email": _mostly(data, valid_emails, emails, "email"),
    }
    for name, valid, anything in (
        ("phone", valid_phones, phones),
        ("timezone", valid_zones, timezones),
        ("extra", scalars, scalars),  # an unknown field
    ):
        if data.draw(st.integers(0, 2), label=f"has {name}") == 0:
            attendee[name] = _mostly(data, valid, anything, name)
    for name in ("name", "email"):
        if data.draw(st.integers(0, 9), label=f"drop {name}") == 0:
            del attendee[name]
    payload = {
        "event_type_id": _mostly(data, valid_ids, ids, "event_type_id"),
        "requested_time": _mostly(data, valid_times, times, "requested_time"),
        "attendee": _mostly(data, st.just(attendee), scalars, "attendee"),
    }
    for name, valid, anything in (
        ("assigned_to_id", valid_members, members),
        ("custom_fields", valid_objects, json_objects),
        ("metadata", valid_objects, json_objects),
        ("colour", scalars, scalars),  # an unknown field
    ):
        if data.draw(st.integers(0, 2), label=f"has {name}") == 0:
            payload[name] = _mostly(data, valid, anything, name)
    for name in ("event_type_id", "requested_time", "attendee"):
        if data.draw(st.integers(0, 9), label=f"drop {name}") == 0:
            del payload[name]
    if data.draw(st.integers(0, 19), label="not an object") == 0:
        payload = data.draw(st.one_of(st.lists(scalars, max_size=2), scalars), label="payload")
    assert _outcome(_kwargs_fors(payload, team)) == _outcome(_serializers_own(payload, team))


def test_a_nested_serializer_with_rules_of_its_own_is_left_to_the_serializer():
    from bookings.serializers import StrictSerializer, TextField, _plainly_valid

    class Checked(StrictSerializer):
        name = TextField()

        def validate_name(self, value):
            raise serializers.ValidationError("never this name")

    class Plain(StrictSerializer):
        name = TextField()

    assert _plainly_valid({"inner": {"name": "Ada"}}, {"inner": Plain()}) == {
        "inner": {"name": "Ada"}
    }
    assert _plainly_valid({"inner": {"name": "Ada"}}, {"inner": Checked()}) is None
