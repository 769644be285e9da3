"""The input serializers copy their declared fields shallowly (StrictSerializer.get_fields):
each instance still gets fields of its own, bound to it, and the declared ones stay untouched,
so one request's validation can never leak into another's."""

import pytest

from bookings import serializers as s

# Named one by one: a new input serializer must be added here (the first test says so).
INPUT_SERIALIZERS = [
    s.AttendeeInputSerializer,
    s.AttendeeUpdateSerializer,
    s.BookingCreateSerializer,
    s.BookingUpdateSerializer,
    s.CancelSerializer,
    s.RescheduleSerializer,
]


def _strict_serializers():
    found = [
        value
        for value in vars(s).values()
        if isinstance(value, type) and issubclass(value, s.StrictSerializer)
    ]
    return sorted(set(found) - {s.StrictSerializer}, key=lambda cls: cls.__name__)


def test_every_input_serializer_is_covered():
    assert set(_strict_serializers()) - {s.EmptyBodySerializer} == set(INPUT_SERIALIZERS)


@pytest.mark.parametrize("cls", INPUT_SERIALIZERS, ids=lambda cls: cls.__name__)
def test_each_instance_has_its_own_bound_fields(cls):
    one, two = cls(data={}), cls(data={})
    assert set(one.fields) == set(cls._declared_fields) == set(two.fields)
    for name, field in one.fields.items():
        declared = cls._declared_fields[name]
        assert field is not declared
        assert field is not two.fields[name]
        assert type(field) is type(declared)
        assert field.parent is one
        assert two.fields[name].parent is two
        assert field.field_name == name
        # The declared field is never bound: it is only a pattern to copy.
        assert getattr(declared, "parent", None) is None


def test_nested_serializer_gets_fields_of_its_own():
    one, two = s.BookingCreateSerializer(data={}), s.BookingCreateSerializer(data={})
    nested_one, nested_two = one.fields["attendee"], two.fields["attendee"]
    assert nested_one is not nested_two
    assert nested_one.parent is one
    assert nested_one.fields["email"] is not nested_two.fields["email"]
    assert nested_one.fields["email"].parent is nested_one


def test_validation_state_does_not_leak_between_instances():
    declared = s.RescheduleSerializer._declared_fields["reason"]
    validators_before = list(declared.validators)
    bad = s.RescheduleSerializer(data={"requested_time": "soon", "reason": 5})
    good = s.RescheduleSerializer(data={"requested_time": "2030-01-02T10:00:00Z", "reason": "x"})
    assert not bad.is_valid()
    assert set(bad.errors) == {"requested_time", "reason"}
    assert good.is_valid(), good.errors
    assert good.validated_data["reason"] == "x"
    # The shared validators were not added to by either (a shallow copy shares the list).
    assert declared.validators == validators_before
    again = s.RescheduleSerializer(data={"requested_time": "soon"})
    assert not again.is_valid()
    assert set(again.errors) == {"requested_time"}


def test_email_validators_stay_as_declared_after_many_instances():
    field = s.AttendeeInputSerializer._declared_fields["email"]
    before = list(field.validators)
    for _ in range(5):
        serializer = s.AttendeeInputSerializer(data={"name": "A", "email": "not-an-email"})
        assert not serializer.is_valid()
        assert "email" in serializer.errors
    assert field.validators == before
