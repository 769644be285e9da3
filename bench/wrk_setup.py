"""The database side of bench/wrk_bench.py, run inside Django with the server's settings.

    python -m bench.wrk_setup prepare '{"depth": 500000}'
    python -m bench.wrk_setup precreate '{"team_id": …, "key_id": …, "start": …, "count": N}'

Each prints one line ``WRK_SETUP <json>``. ``prepare`` removes what earlier runs left (the
bench team's bookings past the seeded year, its ``wrk-…`` idempotency keys and bench API keys),
VACUUMs if it removed anything, and creates a fresh key with every scope for the bench team
(the oldest team: a regular one, 10 members) and for the deep-list team (the team with the
most bookings), and a signed list cursor for the row at ``depth`` of the deep team's list.
``precreate`` writes bookings for the lifecycle scenarios with set-based SQL, as the services
would have left them (history created + routed, the confirmation email sent).
"""

import json
import sys
from datetime import UTC, datetime, timedelta

import django

# The bench's own rows are the bench team's bookings after the seeded year (the seed stops
# 365 days after its run); the bench writes nothing before.
BENCH_AFTER = timedelta(days=366)
KEY_NAME = "wrk bench"
IDEMPOTENCY_PREFIX = "wrk-"


def _cleanup(cursor, team_id: str) -> int:
    cursor.execute(
        "CREATE TEMP TABLE w_old AS SELECT id FROM bookings_booking"
        " WHERE team_id = %s AND start_time > now() + %s",
        [team_id, BENCH_AFTER],
    )
    cursor.execute("SELECT count(*) FROM w_old")
    removed = cursor.fetchone()[0]
    for table in ("bookings_bookinghistory", "notifications_emailoutbox"):
        cursor.execute(f"DELETE FROM {table} WHERE booking_id IN (SELECT id FROM w_old)")
    cursor.execute(
        "DELETE FROM bookings_idempotencykey WHERE team_id = %s"
        " AND (key LIKE %s OR booking_id IN (SELECT id FROM w_old))",
        [team_id, IDEMPOTENCY_PREFIX + "%"],
    )
    cursor.execute("DELETE FROM bookings_booking WHERE id IN (SELECT id FROM w_old)")
    cursor.execute("DROP TABLE w_old")
    return removed


def prepare(depth: int) -> dict:
    from django.db import connection, transaction

    from bookings.models import ApiKey, Booking, EventType, Team, TeamMember
    from bookings.pagination import cursor_encode
    from bookings.services import api_key_create

    team = Team.objects.order_by("created_at", "id").first()
    if team is None:
        raise SystemExit("The database holds no teams: seed it (bench/seed_million.py).")
    with transaction.atomic(), connection.cursor() as cursor:
        removed = _cleanup(cursor, team.id)
        ApiKey.objects.filter(name=KEY_NAME).delete()
    if removed:
        with connection.cursor() as cursor:
            cursor.execute(
                "VACUUM ANALYZE bookings_booking, bookings_bookinghistory,"
                " notifications_emailoutbox, bookings_idempotencykey"
            )
            # Write out now what the deletion and the vacuum dirtied: else the checkpointer and
            # the full-page images after it fall into the first scenarios' measurements (the
            # deep list page ran 1.3-1.4 x the first page after a cleanup of 66,000 rows).
            cursor.execute("CHECKPOINT")
    key, secret = api_key_create(team=team, name=KEY_NAME)
    event_types = {e.slug: e for e in EventType.objects.filter(team=team)}
    hosts = TeamMember.objects.filter(host_links__event_type=event_types["intro-call"])
    hosts = list(hosts.order_by("host_links__id").values_list("id", flat=True))
    bookings = Booking.objects.filter(team=team).order_by("start_time", "id")
    sample = bookings[bookings.count() // 2]  # a seeded booking, its history and emails

    deep = Team.objects.filter(slug="deep-list").first()
    if deep is None:  # a database seeded without --deep-team: its biggest team
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT team_id FROM bookings_booking GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
            deep = Team.objects.get(pk=cursor.fetchone()[0])
    deep_rows = Booking.objects.filter(team=deep).count()
    reached = max(0, min(depth, deep_rows - 50))  # a full page of 50 after the cursor
    deep_cursor = None
    if reached:  # the cursor naming the row at that depth: the page after it starts there
        last = (
            Booking.objects.filter(team=deep)
            .order_by("start_time", "id")
            .values_list("start_time", "id")[reached - 1]
        )
        deep_cursor = cursor_encode(*last)
    _, deep_secret = api_key_create(team=deep, name=KEY_NAME)
    return {
        "team_id": team.id,
        "team_name": team.name,
        "team_bookings": bookings.count(),
        "key_id": key.id,
        "secret": secret,
        "intro_call": event_types["intro-call"].id,
        "onboarding": event_types["onboarding"].id,
        "hosts": hosts,
        "booking_id": sample.id,
        "deep_team_name": deep.name,
        "deep_bookings": deep_rows,
        "deep_secret": deep_secret,
        "deep_depth": reached,
        "deep_cursor": deep_cursor,
        "removed": removed,
        "total_bookings": Booking.objects.count(),
    }


# Bookings as booking_create leaves them, written at once: ``count`` SCHEDULED intro calls
# (15 minutes, back to back on each of the 10 hosts in turn) from ``start``, and ``pending``
# PENDING_CONFIRMATION onboardings (45 minutes + 15 of buffer) after them.
_PRECREATE = """
CREATE TEMP TABLE w_new ON COMMIT DROP AS
SELECT 'bkg_' || pg_temp.ulid(pg_temp.ms(now()), %(run)s || '-' || g) AS id,
       (%(hosts)s::text[])[g %% 10 + 1] AS host, g < %(count)s::int AS scheduled,
       CASE WHEN g < %(count)s::int THEN %(start)s + (g / 10) * interval '15 minutes'
            ELSE %(start)s + ((%(count)s::int + 9) / 10) * interval '15 minutes'
                 + ((g - %(count)s::int) / 10) * interval '1 hour' END AS st
FROM generate_series(0, %(count)s::int + %(pending)s::int - 1) AS g;
INSERT INTO bookings_booking (id, team_id, event_type_id, assigned_to_id, status, start_time,
    end_time, blocked_start, blocked_end, attendee_name, attendee_email, attendee_phone,
    attendee_timezone, custom_fields, metadata, cancelled_by, ical_uid, ical_sequence,
    created_at, updated_at)
SELECT id, %(team)s, CASE WHEN scheduled THEN %(intro)s ELSE %(onboarding)s END, host,
       CASE WHEN scheduled THEN 'SCHEDULED' ELSE 'PENDING_CONFIRMATION' END, st,
       st + CASE WHEN scheduled THEN interval '15 minutes' ELSE interval '45 minutes' END, st,
       st + CASE WHEN scheduled THEN interval '15 minutes' ELSE interval '1 hour' END,
       'Wrk Bench', 'wrk-bench@example.com', '', '', '{}', '{}', '',
       substr(id, 5) || '@bookings', 0, now(), now()
FROM w_new ORDER BY id;
INSERT INTO bookings_bookinghistory
    (booking_id, at, action, from_status, to_status, actor_type, actor_id, changes)
SELECT id, now(), 'created', '', 'DRAFT', 'api_key', %(key)s, '{}' FROM w_new
UNION ALL
SELECT id, now(), 'routed', 'DRAFT',
       CASE WHEN scheduled THEN 'SCHEDULED' ELSE 'PENDING_CONFIRMATION' END, 'system', '',
       jsonb_build_object('assigned_to_id', jsonb_build_array(NULL, host))
FROM w_new;
INSERT INTO notifications_emailoutbox (booking_id, kind, event_key, to_email, ical_sequence,
    status, attempts, last_error, created_at, next_attempt_at, sent_at)
SELECT id, CASE WHEN scheduled THEN 'confirmation' ELSE 'awaiting_confirmation' END,
       id || ':created', 'wrk-bench@example.com', 0, 'sent', 1, '', now(), now(), now()
FROM w_new;
"""


def precreate(
    *,
    team_id: str,
    key_id: str,
    intro_call: str,
    onboarding: str,
    hosts: list[str],
    start: str,
    count: int,
    pending: int,
    run: str,
) -> dict:
    from django.db import connection, transaction

    from bench.seed_sql import FUNCTIONS

    params = {
        "team": team_id,
        "key": key_id,
        "intro": intro_call,
        "onboarding": onboarding,
        "hosts": hosts,
        "start": datetime.fromisoformat(start),
        "count": count,
        "pending": pending,
        "run": run,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(FUNCTIONS)
        # One statement at a time: values are bound on the server, which takes one per message.
        for statement in _PRECREATE.split(";\n"):
            if statement.strip():
                cursor.execute(statement, params)
        cursor.execute("SELECT id, scheduled FROM w_new ORDER BY st, host")
        rows = cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bookings_booking")
    return {
        "scheduled": [booking_id for booking_id, scheduled in rows if scheduled],
        "pending": [booking_id for booking_id, scheduled in rows if not scheduled],
    }


def main() -> None:
    django.setup()
    command, arguments = sys.argv[1], json.loads(sys.argv[2])
    result = {"prepare": prepare, "precreate": precreate}[command](**arguments)
    result["at"] = datetime.now(UTC).isoformat()
    print("WRK_SETUP " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
