"""Compiled reads (``bookings/compiled.py``) return what their querysets return, for every
shape of values, and refuse a build that would not bind its values as parameters."""

import itertools
import json
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Count, JSONField, OuterRef, Subquery
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.pq import ExecStatus
from psycopg.sql import Literal

from bookings import routing, selectors
from bookings.compiled import CompiledQuery, _faster
from bookings.models import Booking, TeamMember
from bookings.pagination import keyset_after
from tests.factories import EventTypeFactory, booking_build

pytestmark = pytest.mark.django_db
S = Booking.Status
BASE = datetime(2027, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
def bookings(team, hosts, event_type):
    other_type = EventTypeFactory(team=team, hosts=hosts[:1], slug="other")
    rng = random.Random(7)
    statuses = [S.SCHEDULED, S.CANCELLED, S.COMPLETED, S.PENDING_CONFIRMATION, S.NO_SHOW]
    emails = ["ada@example.com", "Ada@Example.com", "bob@example.com", "cy@example.com"]
    built = []
    for n in range(120):
        built.append(
            booking_build(
                event_type=event_type if n % 3 else other_type,
                assigned_to=hosts[n % 3] if n % 3 else hosts[0],
                # Several bookings share a start time: the id breaks the tie.
                start_time=BASE + timedelta(minutes=30 * (n // 4) + (n % 4) * 1440),
                status=S.COMPLETED if n % 4 == 0 else rng.choice(statuses),
                attendee_email=rng.choice(emails),
            )
        )
    return Booking.objects.bulk_create(built)


def _filter_sets(bookings, hosts, event_type):
    starts = sorted({b.start_time for b in bookings})
    return [
        {},
        {"statuses": ["SCHEDULED"]},
        {"statuses": ["CANCELLED", "COMPLETED", "NO_SHOW"]},
        {"event_type_id": event_type.id},
        {"assigned_to_id": hosts[1].id, "statuses": ["SCHEDULED", "PENDING_CONFIRMATION"]},
        {"attendee_email": "ADA@example.com"},
        {"start_from": starts[10], "start_before": starts[60]},
        {"start_from": starts[5], "attendee_email": "bob@example.com", "statuses": ["COMPLETED"]},
        {"event_type_id": "evt_unknown"},
    ]


def test_every_page_of_every_filter_matches_the_queryset(team, hosts, event_type, bookings):
    for filters, limit in itertools.product(_filter_sets(bookings, hosts, event_type), (1, 7, 50)):
        expected = list(selectors.booking_list(team=team, **filters))
        seen, cursor = [], None
        for _ in range(200):
            page = selectors.booking_page(team=team, cursor=cursor, limit=limit, **dict(filters))
            seen += page.items
            if not page.has_more:
                break
            cursor = page.next_cursor
        assert [b.id for b in seen] == [b.id for b in expected], (filters, limit)
        # Fetched with only the rendered fields, each as the full row has it.
        for got, full in zip(seen, expected, strict=True):
            for name in selectors.BOOKING_RENDERED:
                assert getattr(got, name) == getattr(full, name), (name, filters)


def test_get_matches_the_row_and_is_scoped_to_the_team(team, other_team, bookings):
    booking = bookings[17]

    got = selectors.booking_get(team=team, booking_id=booking.id)

    full = Booking.objects.get(pk=booking.id)
    assert {name: getattr(got, name) for name in selectors.BOOKING_RENDERED} == {
        name: getattr(full, name) for name in selectors.BOOKING_RENDERED
    }
    with pytest.raises(selectors.NotFound):
        selectors.booking_get(team=other_team, booking_id=booking.id)


def test_view_is_a_record_of_the_rendered_fields_scoped_to_the_team(team, other_team, bookings):
    booking = bookings[17]

    got = selectors.booking_view(team=team, booking_id=booking.id)

    full = Booking.objects.get(pk=booking.id)
    assert isinstance(got, tuple)  # read-only: nothing can save it
    assert set(got._fields) == set(selectors.BOOKING_RENDERED)
    assert got._asdict() == {name: getattr(full, name) for name in selectors.BOOKING_RENDERED}
    with pytest.raises(selectors.NotFound):
        selectors.booking_view(team=other_team, booking_id=booking.id)


def test_records_carry_the_annotations_after_the_fields(team, hosts, event_type, bookings):
    def build(*, team_id):
        return (
            TeamMember.objects.filter(team_id=team_id)
            .only("id", "is_active")
            .annotate(
                n=Count("bookings"),
                last=Subquery(
                    Booking.objects.filter(assigned_to=OuterRef("pk"))
                    .order_by("-start_time")
                    .values("start_time")[:1]
                ),
            )
            .order_by("id")
        )

    got = CompiledQuery(build, records=True)(team_id=team.id)

    expected = list(build(team_id=team.id))
    assert got[0]._fields == ("id", "is_active", "n", "last")
    assert [tuple(record) for record in got] == [
        (host.id, host.is_active, host.n, host.last) for host in expected
    ]
    assert [record.n for record in got] == [40, 40, 40]  # 120 bookings over three hosts
    assert all(record.last is not None and record.last.tzinfo for record in got)


def test_routing_reads_each_host_as_a_record_of_what_it_compares(event_type, hosts):
    start = BASE + timedelta(days=1)
    booking_build(event_type=event_type, assigned_to=hosts[1], start_time=start).save()
    end = start + timedelta(minutes=event_type.duration)

    free = routing.hosts_to_try(event_type=event_type, blocked_start=start, blocked_end=end)

    assert [host.id for host in free] == [hosts[0].id, hosts[2].id]  # never assigned: by id
    assert all(isinstance(host, tuple) for host in free)
    assert {(host.is_active, host.is_busy, host.last_assigned_at) for host in free} == {
        (True, False, None)
    }


def test_a_value_changed_before_use_is_refused(team):
    # A build that lower-cases its value would bind the stand-in's lower case, not the value.
    query = CompiledQuery(lambda *, name: Booking.objects.filter(attendee_name=name.upper()))

    with pytest.raises(ValueError, match="transformed"):
        query(name="ada")


def test_each_shape_compiles_once(team, bookings):
    query = CompiledQuery(
        lambda *, team_id, after_time, after_id, count: keyset_after(
            Booking.objects.filter(team_id=team_id), after_time, after_id
        )[:count]
    )
    first = query(team_id=team.id, after_time=None, after_id=None, count=3)
    after = first[-1]
    second = query(team_id=team.id, after_time=after.start_time, after_id=after.id, count=3)
    again = query(team_id=team.id, after_time=None, after_id=None, count=3)

    assert [b.id for b in again] == [b.id for b in first]
    assert len(query._compiled) == 2  # two shapes: no cursor, a cursor
    ordered = list(Booking.objects.filter(team=team).order_by("start_time", "id")[:6])
    assert [b.id for b in first + second] == [b.id for b in ordered]


def test_a_filter_that_matches_nothing_returns_nothing(team, bookings):
    page = selectors.booking_page(team=team, cursor=None, limit=10, statuses=[])

    assert page.items == []
    assert page.has_more is False


JSON_DOCUMENTS = [
    {},
    {"a": 1, "b": [1, 2.5, -0.0, 1e-7, 12345678901234567], "c": None, "d": True},
    {"big": 2**70, "neg": -(2**65)},  # beyond 64 bits: orjson refuses, Django's parse takes it
    {"text": 'é ✓ 😀 \n\t \\ " \u2028', "nested": {"x": {"y": [[], {}]}}},
    {"float": 0.1 + 0.2, "exp": 1.5e300, "tiny": 5e-324},
    {"edge": 2**63 - 1, "low": -(2**63), "over": 2**64, "digits": "12345678901234567890"},
    {"near": 999999999999999999, "long_float": 0.12345678901234567},
    {"": "", "key with spaces": "v", "1": 1},
]


@pytest.mark.parametrize("document", JSON_DOCUMENTS, ids=range(len(JSON_DOCUMENTS)))
def test_json_fields_read_as_the_orm_reads_them(team, hosts, event_type, document):
    """The compiled reads parse JSON with orjson (Django's converter as the fallback): the same
    Python values as the ORM, types included, for every kind of document."""
    (booking,) = Booking.objects.bulk_create(
        [
            booking_build(
                event_type=event_type,
                assigned_to=hosts[0],
                start_time=BASE,
                custom_fields=document,
                metadata={"doc": document},
            )
        ]
    )
    full = Booking.objects.get(pk=booking.id)
    view = selectors.booking_view(team=team, booking_id=booking.id)
    model = selectors.booking_get(team=team, booking_id=booking.id)
    for got in (view, model):
        for name in ("custom_fields", "metadata"):
            mine, orm = getattr(got, name), getattr(full, name)
            assert mine == orm
            assert repr(mine) == repr(orm)  # 1 stays 1, 1.0 stays 1.0, -0.0 stays -0.0


def test_json_fields_are_parsed_by_orjson_not_json_loads(team, hosts, event_type, monkeypatch):
    built = booking_build(
        event_type=event_type,
        assigned_to=hosts[0],
        start_time=BASE,
        custom_fields={"a": [1, 2]},
        metadata={},
    )
    (booking,) = Booking.objects.bulk_create([built])

    def refused(*args, **kwargs):
        raise AssertionError("json.loads called")

    monkeypatch.setattr(json, "loads", refused)
    view = selectors.booking_view(team=team, booking_id=booking.id)
    assert view.custom_fields == {"a": [1, 2]}
    assert view.metadata == {}
    # An empty object is a dict of its own on each read: changing one changes no other.
    again = selectors.booking_view(team=team, booking_id=booking.id)
    assert again.metadata == {}
    assert again.metadata is not view.metadata
    # The ORM's own read still goes through json.loads (what the fallback is).
    with pytest.raises(AssertionError, match=r"json\.loads called"):
        Booking.objects.get(pk=booking.id)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(value=_JSON_VALUES, indent=st.sampled_from([None, 1]))
def test_the_faster_json_converter_reads_what_django_reads(value, indent):
    """For any JSON text (integers of any size, floats, unicode, nesting): orjson's parse,
    with its fallback, gives the same Python values, of the same types, as Django's."""
    field = JSONField()
    django_convert = field.from_db_value
    faster = _faster(django_convert)
    assert faster is not django_convert
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    mine, theirs = faster(text, None, None), django_convert(text, None, None)
    assert mine == theirs or (mine != mine and theirs != theirs)
    assert repr(mine) == repr(theirs)
    assert faster(None, None, None) is None


def test_a_constant_with_quotes_and_percents_reads_as_the_queryset_reads_it(team, bookings):
    # On PostgreSQL a constant of the query is written into the SQL: the literal's quote and
    # percent sign must survive both PostgreSQL's quoting and the driver's %-formatting.
    Booking.objects.filter(pk=bookings[3].pk).update(
        attendee_name="O'Hara 100% \\ sure", status="COMPLETED"
    )

    def build(*, team_id):
        return Booking.objects.filter(
            team_id=team_id, attendee_name="O'Hara 100% \\ sure", status__in=["COMPLETED"]
        ).order_by("id")

    query = CompiledQuery(build)
    got = query(team_id=team.id)

    assert [b.id for b in got] == [b.id for b in build(team_id=team.id)] == [bookings[3].id]


def _routing_values(event_type, start: datetime) -> dict:
    """What routing asks PostgreSQL for a slot at ``start`` (no ``earliest_start``: that
    bound serves the column comparisons SQLite makes)."""
    return {
        "event_type_id": event_type.id,
        "team_id": event_type.team_id,
        "blocked_start": start,
        "blocked_end": start + timedelta(hours=1),
    }


def _generic_plan(query: CompiledQuery, values: dict, explain: str = "EXPLAIN") -> str:
    """``explain`` of the statement ``query`` compiled for ``values``, prepared as the
    application's connection prepares it and planned without its values (a generic plan)."""
    (compiled,) = query._compiled.values()
    numbers = itertools.count(1)
    prepared = re.sub("%s", lambda _match: f"${next(numbers)}", compiled.sql)
    arguments = [slot(values) for slot in compiled.slots]
    types = ["timestamptz" if isinstance(value, datetime) else "text" for value in arguments]
    connection.ensure_connection()
    raw = connection.connection  # PREPARE and EXECUTE as plain SQL, outside psycopg's binding

    def run(statement: str) -> list[str]:
        result = raw.pgconn.exec_(statement.encode())
        assert result.status in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK), result.error_message
        return [result.get_value(row, 0).decode() for row in range(result.ntuples)]

    run("SET LOCAL plan_cache_mode = force_generic_plan")
    run("SET LOCAL enable_seqscan = off")
    run(f"PREPARE routing_probe ({', '.join(types)}) AS {prepared}")
    try:
        literals = ", ".join(Literal(value).as_string(raw) for value in arguments)
        return "\n".join(run(f"{explain} EXECUTE routing_probe({literals})"))
    finally:
        run("DEALLOCATE routing_probe")


@pytest.mark.postgres
def test_constants_are_written_into_the_sql_so_one_plan_serves_every_call(event_type, hosts):
    # Routing's busy check reads the partial indexes of active bookings. Bound as parameters,
    # the active statuses hid that from a prepared statement's generic plan, and PostgreSQL
    # planned the statement anew at each create (1.5 ms a time on a million bookings).
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plans")
    values = _routing_values(event_type, BASE + timedelta(days=2))
    routing._candidate_hosts(**values)
    (compiled,) = routing._candidate_hosts._compiled.values()
    assert "IN ('DRAFT', 'PENDING_CONFIRMATION', 'RESCHEDULED', 'SCHEDULED')" in compiled.sql
    assert "SELECT 1 AS" in compiled.sql
    # The values and nothing else: the slot's bounds, the event type (twice) and the team.
    assert compiled.sql.count("%s") == len(compiled.slots) == 5

    plan = _generic_plan(routing._candidate_hosts, values)

    # The generic plan, made without the values, still reads an index of active bookings.
    assert "booking_host_active_blocked" in plan or "booking_no_overlap_per_host" in plan, plan


@pytest.mark.postgres
def test_the_busy_check_reads_only_the_bookings_that_overlap_the_slot(event_type, hosts):
    # Each host has 250 active bookings back to back just before the slot, none overlapping
    # it. The busy check used to name the columns only: a generic plan then read the
    # exclusion constraint's index by host alone (or the host's last three days) and filtered
    # every row it found, so a create slowed with each booking of a busy host (bench/README.md,
    # "Seventh round"). Asked as the constraint asks it, range && range, the index returns the
    # overlapping bookings and nothing else.
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plans")
    start = BASE + timedelta(days=10)
    Booking.objects.bulk_create(
        booking_build(
            event_type=event_type,
            assigned_to=host,
            start_time=start - timedelta(minutes=15 * (n + 1)),
            end_time=start - timedelta(minutes=15 * n),
        )
        for host in hosts
        for n in range(250)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bookings_booking")
    values = _routing_values(event_type, start)
    assert [host.is_busy for host in routing._candidate_hosts(**values)] == [False] * 3

    explained = _generic_plan(
        routing._candidate_hosts, values, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)"
    )

    removed = re.findall(r"Rows Removed by (?:Filter|Index Recheck): (\d+)", explained)
    assert sum(int(n) for n in removed) == 0, explained
    assert "&&" in explained, explained  # the overlap is the index's own condition
