"""GET /v1/bookings pagination: a keyset cursor on (start_time, id), signed and seeking."""

import base64
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings.models import Booking
from bookings.pagination import _SALT, cursor_encode
from tests.assertions import assert_error, assert_ok
from tests.factories import TeamMemberFactory, booking_build

pytestmark = pytest.mark.django_db

BASE = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
S = Booking.Status


def page(client, **params) -> dict:
    return assert_ok(client.get("/v1/bookings", params), "bookings")


def position(booking: dict) -> tuple[datetime, str]:
    return datetime.fromisoformat(booking["start_time"]), booking["id"]


def walk(client, *, between_pages=None, **params) -> list[dict]:
    """Every page from the first to the last; ``between_pages(page_number, last_row)``."""
    rows, cursor, number = [], None, 0
    while True:
        body = page(client, **params, **({"cursor": cursor} if cursor else {}))
        rows.extend(body["bookings"])
        pagination = body["pagination"]
        assert pagination["has_more"] is (pagination["next_cursor"] is not None)
        if not pagination["has_more"]:
            return rows
        assert len(body["bookings"]) == int(params.get("limit", 50))
        cursor = pagination["next_cursor"]
        number += 1
        assert number < 200, "the walk does not end"
        if between_pages is not None:
            between_pages(number, body["bookings"][-1])


@pytest.fixture
def lanes(team):
    """Four hosts: bookings sharing a start time sit in different lanes (no overlap)."""
    return [TeamMemberFactory(team=team, name=f"Lane {i}") for i in range(4)]


@pytest.fixture
def thousand(event_type, lanes) -> list[Booking]:
    """1,000 bookings, up to four per start time, created in shuffled order.

    Ids grow with creation time, so shuffling makes id order unrelated to start-time order:
    the (start_time, id) order is then really tested, not implied by the ids.
    """
    slots = [(slot, lane) for slot in range(250) for lane in range(4)]
    random.Random(1234).shuffle(slots)
    bookings = [
        booking_build(
            event_type=event_type,
            assigned_to=lanes[lane],
            start_time=BASE + timedelta(hours=slot),
            status=S.COMPLETED if (slot + lane) % 5 == 0 else S.SCHEDULED,
        )
        for slot, lane in slots
    ]
    return Booking.objects.bulk_create(bookings)


def _inserted(event_type, start_time, *, booking_id=None) -> Booking:
    # COMPLETED: not active, so it may share its host's time on PostgreSQL too.
    booking = booking_build(
        event_type=event_type, start_time=start_time, status=S.COMPLETED, id=booking_id
    )
    booking.assigned_to_id = event_type.host_links.first().member_id
    booking.save(force_insert=True)
    return booking


def _cancel(ids) -> None:
    Booking.objects.filter(pk__in=ids).update(
        status=S.CANCELLED, cancelled_at=timezone.now(), cancelled_by=Booking.CancelledBy.API
    )


def _sort_key(booking: Booking) -> tuple[datetime, str]:
    return booking.start_time, booking.id


@pytest.mark.parametrize(
    ("limit", "status_filter"),
    [(100, None), (37, "SCHEDULED,COMPLETED")],
    ids=["no-filter-limit-100", "status-filter-limit-37"],
)
def test_walking_all_pages_returns_each_booking_exactly_once_despite_changes(
    api, event_type, thousand, limit, status_filter
):
    ordered = sorted(thousand, key=_sort_key)
    rng = random.Random(99)
    inserted_behind, inserted_ahead, cancelled_ahead, cancelled = set(), set(), set(), set()

    def between_pages(number, last_row):
        last_time, last_id = position(last_row)
        returned_so_far = {b.id for b in ordered if _sort_key(b) <= (last_time, last_id)}
        ahead = [b.id for b in ordered if _sort_key(b) > (last_time, last_id)]
        # Inserted behind the cursor: earlier in time, and at the cursor's very start time
        # with a smaller id (ids are ours to choose here). Neither may appear.
        inserted_behind.add(_inserted(event_type, last_time - timedelta(minutes=7)).id)
        tie_id = f"bkg_0000000000{number:016d}"
        assert tie_id < last_id
        inserted_behind.add(_inserted(event_type, last_time, booking_id=tie_id).id)
        # Inserted ahead: at the cursor's start time with a newer (larger) id, and later on.
        inserted_ahead.add(_inserted(event_type, last_time).id)
        inserted_ahead.add(_inserted(event_type, last_time + timedelta(minutes=13)).id)
        # Cancelled: the cursor's own row, one already returned, and a few ahead of it.
        doomed_ahead = set(rng.sample(ahead, min(5, len(ahead))))
        doomed = {last_id, rng.choice(sorted(returned_so_far)), *doomed_ahead}
        _cancel(doomed)
        cancelled.update(doomed)
        cancelled_ahead.update(doomed_ahead)

    params = {"limit": str(limit)}
    if status_filter:
        params["status"] = status_filter
    rows = walk(api, between_pages=between_pages, **params)

    returned = [row["id"] for row in rows]
    assert len(returned) == len(set(returned)), "a booking was returned twice"
    # In (start_time, id) order across every page.
    positions = [position(row) for row in rows]
    assert positions == sorted(positions)
    # Every booking that existed and matched throughout: exactly once.
    throughout = {b.id for b in thousand}
    if status_filter:
        throughout -= cancelled
    assert throughout <= set(returned), f"missing: {sorted(throughout - set(returned))[:5]}"
    # Nothing inserted behind the cursor; everything inserted ahead of it.
    assert not inserted_behind & set(returned)
    assert inserted_ahead <= set(returned)
    assert set(returned) <= {b.id for b in thousand} | inserted_ahead
    if status_filter:
        # Rows cancelled before the walk reached them no longer match: never returned.
        assert not cancelled_ahead & set(returned)
        assert all(row["status"] in ("SCHEDULED", "COMPLETED") for row in rows)
    assert len(cancelled_ahead) > 0
    assert len(inserted_ahead) > 0


def test_walk_with_filters_returns_exactly_the_filtered_set_in_order(api, thousand, lanes):
    rows = walk(api, limit="100", assigned_to_id=lanes[2].id, status="COMPLETED")

    expected = sorted(
        (b for b in thousand if b.assigned_to_id == lanes[2].id and b.status == S.COMPLETED),
        key=_sort_key,
    )
    assert [row["id"] for row in rows] == [b.id for b in expected]
    assert len(expected) == 50


def test_default_limit_is_50(api, event_type, lanes):
    Booking.objects.bulk_create(
        booking_build(event_type=event_type, start_time=BASE + timedelta(hours=i), assigned_to=h)
        for i in range(20)
        for h in lanes[:3]
    )

    first = page(api)
    second = page(api, cursor=first["pagination"]["next_cursor"])

    assert len(first["bookings"]) == 50
    assert first["pagination"]["has_more"] is True
    assert len(second["bookings"]) == 10
    assert second["pagination"] == {"next_cursor": None, "has_more": False}


def test_exactly_a_full_last_page_has_no_next_cursor(api, event_type, lanes):
    Booking.objects.bulk_create(
        booking_build(event_type=event_type, start_time=BASE + timedelta(hours=i), assigned_to=h)
        for i in range(5)
        for h in lanes
    )

    first = page(api, limit="10")
    second = page(api, limit="10", cursor=first["pagination"]["next_cursor"])

    assert first["pagination"]["has_more"] is True
    assert len(second["bookings"]) == 10
    # Not a "has more" that leads to an empty page.
    assert second["pagination"] == {"next_cursor": None, "has_more": False}


def test_limit_100_returns_100(api, thousand):
    body = page(api, limit="100")

    assert len(body["bookings"]) == 100
    assert body["pagination"]["has_more"] is True


def test_limit_1_walks_ties_one_by_one(api, event_type, lanes):
    same_time = Booking.objects.bulk_create(
        booking_build(event_type=event_type, start_time=BASE, assigned_to=host) for host in lanes
    )

    rows = walk(api, limit="1")

    assert [row["id"] for row in rows] == sorted(b.id for b in same_time)


def test_a_cursor_outlives_its_own_row(api, event_type, lanes):
    bookings = Booking.objects.bulk_create(
        booking_build(event_type=event_type, start_time=BASE + timedelta(hours=i), assigned_to=h)
        for i in range(3)
        for h in lanes[:2]
    )
    first = page(api, limit="2", status="SCHEDULED")
    last_id = first["bookings"][-1]["id"]
    Booking.objects.filter(pk=last_id).delete()

    second = page(api, limit="2", status="SCHEDULED", cursor=first["pagination"]["next_cursor"])

    expected = [b.id for b in sorted(bookings, key=_sort_key)]
    assert [b["id"] for b in second["bookings"]] == expected[2:4]


# --- Query counts: the same at any depth -------------------------------------------------------


def test_empty_list_takes_one_query(api, django_assert_num_queries):
    with django_assert_num_queries(1):
        body = page(api)
    assert body["bookings"] == []


def test_a_full_page_takes_one_query(api, thousand, django_assert_num_queries):
    with django_assert_num_queries(1):
        body = page(api, limit="100")
    assert len(body["bookings"]) == 100


def test_a_deep_page_via_cursor_takes_one_query(api, thousand, django_assert_num_queries):
    deep = sorted(thousand, key=_sort_key)[900]
    cursor = cursor_encode(deep.start_time, deep.id)

    with django_assert_num_queries(1):
        body = page(api, limit="100", cursor=cursor)

    assert len(body["bookings"]) == 99
    assert body["pagination"]["has_more"] is False


@pytest.mark.postgres
def test_a_cursor_page_seeks_the_index_instead_of_skipping_rows(api, thousand):
    deep = sorted(thousand, key=_sort_key)[700]
    cursor = cursor_encode(deep.start_time, deep.id)

    with CaptureQueriesContext(connection) as captured:
        page(api, limit="50", cursor=cursor)

    [sql] = [q["sql"] for q in captured.captured_queries if 'FROM "bookings_booking"' in q["sql"]]
    assert '"bookings_booking"."start_time" >=' in sql
    assert "OFFSET" not in sql.upper()
    assert "LIMIT 51" in sql
    with connection.cursor() as cursor_:
        # On a table this small the planner may rightly prefer anything; told to avoid scans
        # and sorts, it shows whether an index can both seek to the cursor and give the order.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor_.execute(f"SET LOCAL {setting} = off")
        cursor_.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor_.fetchall())
    assert "Index Scan using booking_team_start" in plan, plan
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "start_time >=" in index_cond, plan
    assert "Sort" not in plan, plan


# --- Tampered cursors ------------------------------------------------------------------------


@pytest.fixture
def cursor(api, event_type, lanes) -> str:
    Booking.objects.bulk_create(
        booking_build(event_type=event_type, start_time=BASE, assigned_to=host) for host in lanes
    )
    token = page(api, limit="1")["pagination"]["next_cursor"]
    assert page(api, limit="1", cursor=token)["bookings"]
    return token


def _flip(token: str, index: int) -> str:
    char = token[index]
    return token[:index] + ("A" if char != "A" else "B") + token[index + 1 :]


TAMPERINGS = {
    "flip-first-char": lambda t: _flip(t, 0),
    "flip-middle-char": lambda t: _flip(t, len(t) // 2),
    "flip-last-char": lambda t: _flip(t, -1),
    "truncate-one": lambda t: t[:-1],
    "truncate-half": lambda t: t[: len(t) // 2],
    "payload-only": lambda t: t.split(":")[0],
    "extra-char": lambda t: t + "A",
    "doubled": lambda t: t + t,
    "random-base64": lambda t: base64.urlsafe_b64encode(random.randbytes(40)).decode(),
    "other-salt": lambda t: signing.dumps(signing.loads(t, salt=_SALT), salt="another.salt"),
    "other-secret": lambda t: signing.dumps(
        signing.loads(t, salt=_SALT), salt=_SALT, key="not-our-secret-key"
    ),
    "drf-style": lambda t: "cD0yMDI2LTEyLTAx",
    "offset-number": lambda t: "50",
    "non-ascii": lambda t: "é" + t,
    "colons": lambda t: "a:b:c",
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_cursor_is_400_invalid_cursor(api, cursor, tamper):
    bad = tamper(cursor)
    assert bad != cursor

    response = api.get("/v1/bookings", {"cursor": bad})

    error = assert_error(response, 400, "invalid_cursor", details=set())
    assert "cursor" in error["message"].lower()


@pytest.mark.parametrize(
    "payload",
    [
        {"start": 1},
        ["1", "bkg_x"],
        [1.5, "bkg_x"],
        [True, "bkg_x"],
        [1, 2],
        [1],
        [1, "bkg_x", 3],
        "text",
        None,
        [10**30, "bkg_x"],
        [-(10**30), "bkg_x"],
    ],
)
def test_signed_cursor_with_a_payload_we_never_issue_is_400(api, payload):
    token = signing.dumps(payload, salt=_SALT)

    assert_error(api.get("/v1/bookings", {"cursor": token}), 400, "invalid_cursor")


def test_empty_cursor_is_400_validation_error(api):
    assert_error(api.get("/v1/bookings?cursor="), 400, "validation_error", details={"cursor"})


def test_bad_cursor_takes_no_query(api, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api.get("/v1/bookings", {"cursor": "garbage"})
    assert response.status_code == 400


def test_a_cursor_keeps_microseconds_exactly(api, event_type, lanes):
    moment = BASE + timedelta(microseconds=999_999)
    Booking.objects.bulk_create(
        booking_build(event_type=event_type, start_time=moment, assigned_to=host)
        for host in lanes[:2]
    )
    later = booking_build(
        event_type=event_type, start_time=moment + timedelta(microseconds=1), assigned_to=lanes[2]
    )
    later.save(force_insert=True)

    rows = walk(api, limit="1")

    assert len(rows) == 3
    assert rows[-1]["id"] == later.id
