"""The set-based SQL of bench/seed_million.py, one function per step.

Every pseudo-random choice is a hash of the row number (``pg_temp.rnd(n, salt, m)`` is in
``[0, m)``), so a run is repeatable apart from the clock. Host ``h`` (``n % hosts``) takes its
``k``-th booking (``n / hosts``) in two-hour cell ``k * stride + rnd(stride)`` of the span
(8 cells a day, 06:00 to 22:00 UTC, starting on the hour, quarter past or half past): a
booking blocks at most 95 minutes of its cell (30 + 60-minute slot + 5-minute buffer, less a
10-minute buffer before), so no two bookings of a host ever overlap. Consecutive bookings of
a host share their event type's draw (``k / 2``), so some are rescheduled pairs.

With ``deep_bookings`` (``--deep-team``), that many of the bookings go to one more team,
*Deep List*, with as many members as they need (about 5,800 each), so that one team's list is
half a million rows long: the wrk bench reads a page at that depth. Its hosts follow the
regular ones (``h`` from ``teams * members`` on), and its bookings the regular ones (row
numbers from ``bookings - deep_bookings`` on).

The steps read these temporary tables: ``b_const`` (now, day0), ``b_names`` (word lists as
arrays); ``SETUP`` makes ``b_member``, ``b_choice`` (a host's event types) and ``b_key``.
"""

import json
import math
from dataclasses import dataclass

# ULID: 10 characters of milliseconds, then 16 from md5 (hex digits, all in the alphabet).
# It takes the milliseconds (pg_temp.ms) as a column: the body uses them ten times, and an
# expression there would be computed ten times.
_ULID = " || ".join(
    f"substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((ms >> {5 * (9 - i)}) & 31)::int + 1, 1)"
    for i in range(10)
)
FUNCTIONS = f"""
CREATE FUNCTION pg_temp.ms(ts timestamptz) RETURNS bigint
    IMMUTABLE LANGUAGE sql AS $$ SELECT (extract(epoch FROM ts) * 1000)::bigint $$;
CREATE FUNCTION pg_temp.ulid(ms bigint, seed text) RETURNS text
    IMMUTABLE LANGUAGE sql AS $$ SELECT {_ULID} || upper(substr(md5(seed), 1, 16)) $$;
CREATE FUNCTION pg_temp.rnd(n bigint, salt bigint, m bigint) RETURNS bigint
    IMMUTABLE LANGUAGE sql AS $$ SELECT (hashint8extended(n, salt) & 9223372036854775807) % m $$;
CREATE FUNCTION pg_temp.rndt(t text, salt bigint, m bigint) RETURNS bigint
    IMMUTABLE LANGUAGE sql AS $$ SELECT (hashtextextended(t, salt) & 9223372036854775807) % m $$;
CREATE FUNCTION pg_temp.iso(ts timestamptz) RETURNS text
    IMMUTABLE LANGUAGE sql
    AS $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
"""

# Per team: (slot, name, slug, minutes, buffer before, buffer after, type, needs confirmation).
EVENT_TYPES = [
    (0, "Intro call", "intro-call", 15, 0, 0, "ROUND_ROBIN", False),
    (1, "Product demo", "product-demo", 30, 5, 5, "ROUND_ROBIN", False),
    (2, "Deep dive", "deep-dive", 60, 10, 5, "SOLO", False),
    (3, "Onboarding", "onboarding", 45, 0, 15, "SOLO", True),
]
SCOPES = [
    "bookings:read",
    "bookings:create",
    "bookings:update",
    "bookings:cancel",
    "bookings:reschedule",
    "bookings:transition",
    "event-types:read",
    "team:read",
]


DEEP_TEAM_NAME = "Deep List"


@dataclass(frozen=True)
class Part:
    """A run of booking row numbers ``[lo, hi)`` spread over hosts ``[h0, h0 + hosts)``."""

    lo: int
    hi: int
    h0: int
    hosts: int
    stride: int


@dataclass(frozen=True)
class Shape:
    bookings: int
    teams: int
    members: int
    past_days: int = 3 * 365
    future_days: int = 365
    deep_bookings: int = 0

    @property
    def hosts(self) -> int:
        return self.teams * self.members

    @property
    def cells_per_host(self) -> int:
        return (self.past_days + self.future_days) * 8  # two-hour cells, 06:00 to 22:00

    @property
    def deep_members(self) -> int:
        """The deep team's size: every host at most half full, so the draw has room."""
        if not self.deep_bookings:
            return 0
        return max(self.members, math.ceil(self.deep_bookings / (self.cells_per_host // 2)))

    def _part(self, lo: int, hi: int, h0: int, hosts: int) -> Part:
        per_host = math.ceil((hi - lo) / hosts)
        stride = self.cells_per_host // per_host
        if stride < 1:
            raise SystemExit(f"{per_host} bookings per host do not fit: add teams or members.")
        return Part(lo=lo, hi=hi, h0=h0, hosts=hosts, stride=stride)

    def parts(self) -> list[Part]:
        regular = self.bookings - self.deep_bookings
        if regular < 0 or (self.deep_bookings and regular < self.hosts):
            raise SystemExit("--deep-team must leave the regular teams some bookings.")
        parts = [self._part(0, regular, 0, self.hosts)]
        if self.deep_bookings:
            parts.append(self._part(regular, self.bookings, self.hosts, self.deep_members))
        return parts

    def sql_constants(self) -> dict:
        return {
            "M": self.members,
            "T": self.teams,
            "DM": self.deep_members,
            "deep_name": DEEP_TEAM_NAME,
            "pool": max(1000, self.bookings * 3 // 10),  # distinct attendees
            "event_types": ", ".join(
                f"({s}, '{n}', '{g}', {d}, {b}, {a}, '{t}', {str(r).lower()})"
                for s, n, g, d, b, a, t, r in EVENT_TYPES
            ),
            "scopes": json.dumps(SCOPES),
        }


def setup(c: dict) -> str:
    combos = c["n_team_words"] * c["n_team_kinds"]
    return f"""
CREATE TEMP TABLE b_team AS
SELECT t,
       'team_' || pg_temp.ulid(pg_temp.ms(k.now - interval '4 years' + t * interval '3 hours'),
                               'team' || t) AS id,
       nm.team_words[t % {c["n_team_words"]} + 1] || ' '
         || nm.team_kinds[(t / {c["n_team_words"]}) % {c["n_team_kinds"]} + 1]
         || CASE WHEN t >= {combos} THEN ' ' || (t / {combos} + 1) ELSE '' END AS name,
       k.now - interval '4 years' + t * interval '3 hours' AS created
FROM generate_series(0, {c["T"] - 1}) AS t, b_const k, b_names nm;
ALTER TABLE b_team ADD COLUMN members int NOT NULL DEFAULT {c["M"]};
INSERT INTO b_team
SELECT {c["T"]}, 'team_' || pg_temp.ulid(pg_temp.ms(k.now - interval '4 years'
                                                    + {c["T"]} * interval '3 hours'), 'deep'),
       '{c["deep_name"]}', k.now - interval '4 years' + {c["T"]} * interval '3 hours', {c["DM"]}
FROM b_const k WHERE {c["DM"]} > 0;
INSERT INTO bookings_team (id, name, slug, created_at)
SELECT id, name, lower(replace(name, ' ', '-')), created FROM b_team ORDER BY t;

CREATE TEMP TABLE b_member AS
SELECT t.t * {c["M"]} + m AS h, m, t.id AS team_id, lower(replace(t.name, ' ', '-')) AS slug,
       'mem_' || pg_temp.ulid(pg_temp.ms(t.created + m * interval '1 minute'),
                              'mem' || (t.t * {c["M"]} + m)) AS id,
       (t.t * {c["M"]} + m) % {c["n_firsts"]} + 1 AS fi,
       ((t.t * {c["M"]} + m) * 7) % {c["n_lasts"]} + 1 AS li,
       t.created + m * interval '1 minute' AS created
FROM b_team t, generate_series(0, t.members - 1) AS m;
ALTER TABLE b_member ADD PRIMARY KEY (h);
INSERT INTO bookings_teammember (id, team_id, name, email, timezone, is_active, created_at)
SELECT b.id, b.team_id, nm.firsts[b.fi] || ' ' || nm.lasts[b.li],
       nm.firsts_ascii[b.fi] || '.' || nm.lasts_ascii[b.li] || '@' || b.slug || '.example.com',
       nm.zones[b.h % {c["n_zones"]} + 1], true, b.created
FROM b_member b, b_names nm ORDER BY b.h;

CREATE TEMP TABLE b_evt AS
SELECT t.t, s.*, t.id AS team_id, t.created + interval '1 hour' AS created,
       'evt_' || pg_temp.ulid(
           pg_temp.ms(t.created + interval '1 hour' + s.slot * interval '1 minute'),
           'evt' || t.t || '-' || s.slot) AS id
FROM b_team t CROSS JOIN (VALUES {c["event_types"]})
    AS s(slot, name, slug, duration, bb, ba, kind, req);
INSERT INTO bookings_eventtype (id, team_id, name, slug, description, duration, buffer_before,
    buffer_after, minimum_booking_notice, scheduling_type, requires_confirmation, is_active,
    created_at)
SELECT id, team_id, name, slug, '', duration, bb, ba, 60, kind, req, true, created
FROM b_evt ORDER BY t, slot;
-- Who hosts what: everyone the intro call, the first five the demo, member 0 the deep dive,
-- member 5 the onboarding.
CREATE TEMP TABLE b_hostpair AS
SELECT t.t, p.slot, p.m FROM b_team t CROSS JOIN LATERAL (
    SELECT 0 AS slot, m FROM generate_series(0, t.members - 1) AS m
    UNION ALL SELECT 1, m FROM generate_series(0, least(5, t.members) - 1) AS m
    UNION ALL SELECT 2, 0
    UNION ALL SELECT 3, 5 % t.members) AS p;
INSERT INTO bookings_eventtypehost (event_type_id, member_id)
SELECT e.id, b.id FROM b_hostpair p
JOIN b_evt e ON e.t = p.t AND e.slot = p.slot JOIN b_member b ON b.h = p.t * {c["M"]} + p.m
ORDER BY e.t, e.slot, p.m;
CREATE TEMP TABLE b_choice AS
SELECT b.h, (row_number() OVER w - 1)::int AS j, count(*) OVER (PARTITION BY b.h) AS cnt,
       e.id AS event_type_id, e.duration, e.bb, e.ba, e.req
FROM b_hostpair p JOIN b_member b ON b.h = p.t * {c["M"]} + p.m
JOIN b_evt e ON e.t = p.t AND e.slot = p.slot
WINDOW w AS (PARTITION BY b.h ORDER BY e.slot);

INSERT INTO bookings_apikey (id, team_id, name, prefix, key_hash, scopes, is_test, created_at,
    revoked_at, last_used_at)
SELECT 'key_' || pg_temp.ulid(pg_temp.ms(t.created + interval '2 hours' + v * interval '1 day'),
                              'key' || t.t || '-' || v),
       t.id, (ARRAY['Production', 'Staging', 'Old laptop'])[v + 1],
       CASE WHEN v = 1 THEN 'sk_test_' ELSE 'sk_live_' END
         || substr(md5('p' || t.t || '-' || v), 1, 4),
       encode(sha256(convert_to('bench' || t.t || '-' || v, 'UTF8')), 'hex'),
       '{c["scopes"]}'::jsonb, v = 1, t.created + interval '2 hours' + v * interval '1 day',
       CASE WHEN v = 2 THEN k.now - interval '200 days' END,
       CASE WHEN v = 0 THEN k.now - (t.t % 50) * interval '1 minute' END
FROM b_team t, b_const k, generate_series(0, 2) AS v
WHERE v < 2 OR t.t % 4 = 0;
CREATE TEMP TABLE b_key AS SELECT team_id, id FROM bookings_apikey WHERE name = 'Production';
"""


def _status() -> str:
    return """CASE
    WHEN s.st > k.now THEN CASE
        WHEN c.req THEN CASE WHEN v.r < 550 THEN 'PENDING_CONFIRMATION'
                             WHEN v.r < 930 THEN 'SCHEDULED' ELSE 'CANCELLED' END
        WHEN v.r < 900 THEN 'SCHEDULED' ELSE 'CANCELLED' END
    -- the last two weeks: some not yet marked completed (or still pending)
    WHEN s.st > k.now - interval '14 days' AND v.r < 300 THEN
        CASE WHEN c.req AND v.r < 100 THEN 'PENDING_CONFIRMATION' ELSE 'SCHEDULED' END
    WHEN v.r < 800 THEN 'COMPLETED'
    WHEN v.r < 860 THEN 'NO_SHOW'
    ELSE 'CANCELLED' END"""


def bookings(c: dict, part: Part, lo: int, hi: int) -> str:
    """Rows ``[lo, hi]`` of ``part``: row ``n`` goes to its host ``h0 + (n - part.lo) % hosts``."""
    k = f"(g.n - {part.lo}) / {part.hosts}"  # the row's rank among its host's bookings
    email_local = """CASE a.pattern WHEN 0 THEN z.fa || '.' || z.la WHEN 1 THEN z.fa || z.la
        WHEN 2 THEN left(z.fa, 1) || '.' || z.la ELSE z.la || '.' || z.fa END"""
    return f"""
INSERT INTO bookings_booking (id, team_id, event_type_id, assigned_to_id, status, start_time,
    end_time, blocked_start, blocked_end, attendee_name, attendee_email, attendee_phone,
    attendee_timezone, custom_fields, metadata, cancelled_by, cancellation_reason, cancelled_at,
    ical_uid, ical_sequence, created_at, updated_at)
SELECT 'bkg_' || pg_temp.ulid(v.ms, 'bkg' || g.n), b.team_id, c.event_type_id, b.id,
    x.status, s.st, s.st + c.duration * interval '1 minute', s.st - c.bb * interval '1 minute',
    s.st + (c.duration + c.ba) * interval '1 minute',
    nm.firsts[a.fi] || ' ' || nm.lasts[a.li],
    {email_local} || CASE WHEN a.num > 0 THEN a.num::text ELSE '' END || '@' || nm.domains[a.di],
    CASE WHEN pg_temp.rnd(a.a, 11, 10) < 6 THEN nm.phones[pg_temp.rnd(a.a, 12, {c["n_phones"]}) + 1]
        || lpad(pg_temp.rnd(a.a, 13, 1000000000)::text, 9, '0') ELSE '' END,
    CASE WHEN pg_temp.rnd(a.a, 14, 10) < 8 THEN nm.zones[pg_temp.rnd(a.a, 15, {c["n_zones"]}) + 1]
        ELSE '' END,
    '{{}}'::jsonb,
    (CASE pg_temp.rnd(g.n, 16, 10) WHEN 0 THEN '{{"source": "widget"}}'
        WHEN 1 THEN '{{"source": "partner-api", "campaign": "spring"}}' ELSE '{{}}' END)::jsonb,
    CASE WHEN x.status = 'CANCELLED'
        THEN (ARRAY['host', 'attendee', 'attendee', 'api'])[pg_temp.rnd(g.n, 17, 4) + 1]
        ELSE '' END,
    CASE WHEN x.status = 'CANCELLED' AND pg_temp.rnd(g.n, 18, 10) < 6
        THEN nm.reasons[pg_temp.rnd(g.n, 19, {c["n_reasons"]}) + 1] END,
    CASE WHEN x.status = 'CANCELLED' THEN w.cancelled_at END,
    pg_temp.ulid(v.ms, 'uid' || g.n) || '@bookings',
    x.confirmed::int + (x.status = 'CANCELLED')::int,
    v.created,
    CASE WHEN x.status = 'CANCELLED' THEN w.cancelled_at
         WHEN x.status IN ('COMPLETED', 'NO_SHOW') THEN w.done_at
         WHEN x.confirmed THEN w.confirmed_at ELSE v.created END
FROM generate_series({lo}::bigint, {hi}::bigint) AS g(n)
CROSS JOIN b_const k
CROSS JOIN b_names nm
JOIN b_member b ON b.h = ({part.h0} + (g.n - {part.lo}) % {part.hosts})::int
JOIN b_choice c ON c.h = b.h AND c.j = pg_temp.rnd(b.h * 1000003 + {k} / 2, 1, c.cnt)
CROSS JOIN LATERAL (SELECT k.day0 + (cl.cell / 8) * interval '1 day'
        + (6 + 2 * (cl.cell % 8)) * interval '1 hour'
        + pg_temp.rnd(g.n, 4, 3) * interval '15 minutes' AS st
    FROM (SELECT {k} * {part.stride} + pg_temp.rnd(g.n, 2, {part.stride}) AS cell)
        AS cl OFFSET 0) AS s
CROSS JOIN LATERAL (SELECT v0.created, pg_temp.ms(v0.created) AS ms, v0.r FROM (
    SELECT least(s.st, k.now) - interval '1 hour'
        - pg_temp.rnd(g.n, 5, 86400) * interval '1 minute'
        - pg_temp.rnd(g.n, 6, 60000000) * interval '1 microsecond' AS created,
        pg_temp.rnd(g.n, 7, 1000) AS r OFFSET 0) AS v0 OFFSET 0) AS v
CROSS JOIN LATERAL (SELECT {_status()} AS status OFFSET 0) AS x0
CROSS JOIN LATERAL (SELECT x0.status,
    c.req AND x0.status IN ('SCHEDULED', 'COMPLETED', 'NO_SHOW') AS confirmed OFFSET 0) AS x
CROSS JOIN LATERAL (SELECT
    v.created + (least(s.st, k.now) - v.created) * 0.1 AS confirmed_at,
    v.created + (least(s.st, k.now) - v.created) * (0.3 + pg_temp.rnd(g.n, 8, 60) / 100.0)::float8
        AS cancelled_at,
    least(s.st + (c.duration + pg_temp.rnd(g.n, 9, 2880)) * interval '1 minute', k.now)
        AS done_at OFFSET 0) AS w
CROSS JOIN LATERAL (SELECT pg_temp.rnd(g.n, 3, {c["pool"]}) AS a OFFSET 0) AS a0
CROSS JOIN LATERAL (SELECT a0.a, a0.a % {c["n_firsts"]} + 1 AS fi,
    a0.a / {c["n_firsts"]} % {c["n_lasts"]} + 1 AS li,
    a0.a / ({c["n_firsts"]} * {c["n_lasts"]}) AS num,
    a0.a / 7 % {c["n_domains"]} + 1 AS di, a0.a % 4 AS pattern OFFSET 0) AS a
CROSS JOIN LATERAL (SELECT nm.firsts_ascii[a.fi] AS fa, nm.lasts_ascii[a.li] AS la OFFSET 0) AS z
"""


# A pair: a host's booking and the one before it (same event type, no confirmation step),
# the later made before the earlier's start; about one in forty such bookings.
RESCHEDULES = """
CREATE TEMP TABLE b_pair AS
SELECT o.prev_id AS orig_id, o.id AS new_id FROM (
    SELECT b.id, b.status, b.event_type_id, b.created_at,
           lag(b.id) OVER w AS prev_id, lag(b.event_type_id) OVER w AS prev_evt,
           lag(b.created_at) OVER w AS prev_created, lag(b.start_time) OVER w AS prev_start
    FROM bookings_booking b
    WINDOW w AS (PARTITION BY b.assigned_to_id ORDER BY b.start_time)
) AS o
JOIN bookings_eventtype e ON e.id = o.event_type_id AND NOT e.requires_confirmation
WHERE o.prev_evt = o.event_type_id AND o.prev_created < o.created_at
  AND o.created_at < o.prev_start AND o.status IN ('SCHEDULED', 'COMPLETED', 'NO_SHOW')
  AND pg_temp.rndt(o.id, 20, 40) = 0 AND pg_temp.rndt(o.prev_id, 20, 40) <> 0;
UPDATE bookings_booking b SET status = 'CANCELLED', cancelled_by = 'api',
    cancellation_reason = CASE WHEN pg_temp.rndt(b.id, 21, 2) = 0
                               THEN 'Moved at the attendee''s request.' END,
    cancelled_at = n.created_at, updated_at = n.created_at, rescheduled_to_id = n.id,
    ical_sequence = 0
FROM b_pair p JOIN bookings_booking n ON n.id = p.new_id WHERE b.id = p.orig_id;
UPDATE bookings_booking b
SET status = CASE WHEN b.status = 'SCHEDULED' THEN 'RESCHEDULED' ELSE b.status END,
    rescheduled_from_id = o.id, attendee_name = o.attendee_name,
    attendee_email = o.attendee_email, attendee_phone = o.attendee_phone,
    attendee_timezone = o.attendee_timezone, ical_uid = o.ical_uid, ical_sequence = 1
FROM b_pair p JOIN bookings_booking o ON o.id = p.orig_id WHERE b.id = p.new_id;
"""

_HISTORY_COLUMNS = """INSERT INTO bookings_bookinghistory
    (booking_id, at, action, from_status, to_status, actor_type, actor_id, changes)"""
_CONFIRMED_AT = "b.created_at + (least(b.start_time, k.now) - b.created_at) * 0.1"
_MOVED = """'start_time', jsonb_build_array(pg_temp.iso(o.start_time), pg_temp.iso(n.start_time)),
    'end_time', jsonb_build_array(pg_temp.iso(o.end_time), pg_temp.iso(n.end_time))"""


def _pair(key: str, value: str) -> str:
    """A ``changes`` entry [null, value], left out when value is null (as the services do)."""
    return f"""(CASE WHEN {value} IS NULL THEN '{{}}'::jsonb
        ELSE jsonb_build_object('{key}', jsonb_build_array(NULL, {value})) END)"""


# Each booking's history as the services write it: created + routed (a reschedule's new
# booking: one "rescheduled" entry instead), then confirmed, completed / no-show, cancelled.
HISTORY = f"""
{_HISTORY_COLUMNS}
SELECT b.id, b.created_at, 'created', '', 'DRAFT', 'api_key', key.id, '{{}}'::jsonb
FROM bookings_booking b JOIN b_key key ON key.team_id = b.team_id
WHERE b.rescheduled_from_id IS NULL;
{_HISTORY_COLUMNS}
SELECT b.id, b.created_at, 'routed', 'DRAFT',
       CASE WHEN e.requires_confirmation THEN 'PENDING_CONFIRMATION' ELSE 'SCHEDULED' END,
       'system', '', jsonb_build_object('assigned_to_id', jsonb_build_array(NULL, b.assigned_to_id))
FROM bookings_booking b JOIN bookings_eventtype e ON e.id = b.event_type_id
WHERE b.rescheduled_from_id IS NULL;
{_HISTORY_COLUMNS}
SELECT o.id, o.cancelled_at, 'rescheduled', 'SCHEDULED', 'CANCELLED', 'api_key', key.id,
       jsonb_build_object('status', jsonb_build_array('SCHEDULED', 'CANCELLED'),
           'cancellation.cancelled_by', jsonb_build_array(NULL, 'api'),
           'rescheduled_to_id', jsonb_build_array(NULL, n.id), {_MOVED})
       || {_pair("cancellation.reason", "o.cancellation_reason")}
       || {_pair("reason", "o.cancellation_reason")}
FROM bookings_booking o JOIN bookings_booking n ON n.id = o.rescheduled_to_id
JOIN b_key key ON key.team_id = o.team_id;
{_HISTORY_COLUMNS}
SELECT n.id, n.created_at, 'rescheduled', '', 'RESCHEDULED', 'api_key', key.id,
       jsonb_build_object('rescheduled_from_id', jsonb_build_array(NULL, o.id),
           'assigned_to_id', jsonb_build_array(NULL, n.assigned_to_id), {_MOVED})
       || {_pair("reason", "o.cancellation_reason")}
FROM bookings_booking n JOIN bookings_booking o ON o.id = n.rescheduled_from_id
JOIN b_key key ON key.team_id = n.team_id;
{_HISTORY_COLUMNS}
SELECT b.id, {_CONFIRMED_AT}, 'confirmed', 'PENDING_CONFIRMATION', 'SCHEDULED', 'api_key', key.id,
       jsonb_build_object('status', jsonb_build_array('PENDING_CONFIRMATION', 'SCHEDULED'))
FROM bookings_booking b JOIN bookings_eventtype e ON e.id = b.event_type_id
JOIN b_key key ON key.team_id = b.team_id CROSS JOIN b_const k
WHERE e.requires_confirmation AND b.status IN ('SCHEDULED', 'COMPLETED', 'NO_SHOW');
{_HISTORY_COLUMNS}
SELECT b.id, b.updated_at, lower(b.status), f.status, b.status, 'api_key', key.id,
       jsonb_build_object('status', jsonb_build_array(f.status, b.status))
FROM bookings_booking b JOIN b_key key ON key.team_id = b.team_id
CROSS JOIN LATERAL (SELECT CASE WHEN b.rescheduled_from_id IS NULL THEN 'SCHEDULED'
                                ELSE 'RESCHEDULED' END AS status) AS f
WHERE b.status IN ('COMPLETED', 'NO_SHOW');
{_HISTORY_COLUMNS}
SELECT b.id, b.cancelled_at, 'cancelled', f.status, 'CANCELLED', 'api_key', key.id,
       jsonb_build_object('status', jsonb_build_array(f.status, 'CANCELLED'),
           'cancellation.cancelled_by', jsonb_build_array(NULL, b.cancelled_by))
       || {_pair("cancellation.reason", "b.cancellation_reason")}
FROM bookings_booking b JOIN bookings_eventtype e ON e.id = b.event_type_id
JOIN b_key key ON key.team_id = b.team_id
CROSS JOIN LATERAL (SELECT CASE WHEN e.requires_confirmation THEN 'PENDING_CONFIRMATION'
                                ELSE 'SCHEDULED' END AS status) AS f
WHERE b.status = 'CANCELLED' AND b.rescheduled_to_id IS NULL;
"""


def outbox(c: dict) -> str:
    """The emails the history queued, in time order: nearly all sent; some failed after six
    attempts, some of the last day's still retrying, some superseded by a cancellation."""
    return f"""
WITH ev AS (
    SELECT b.id AS booking_id, b.attendee_email AS to_email, b.created_at AS at,
           CASE WHEN b.rescheduled_from_id IS NULL AND e.requires_confirmation
                THEN 'awaiting_confirmation' ELSE 'confirmation' END AS kind,
           b.id || CASE WHEN b.rescheduled_from_id IS NULL THEN ':created'
                        ELSE ':rescheduled' END AS event_key,
           (b.rescheduled_from_id IS NOT NULL)::int AS seq,
           b.status = 'CANCELLED' AS supersedable
    FROM bookings_booking b JOIN bookings_eventtype e ON e.id = b.event_type_id
    UNION ALL
    SELECT b.id, b.attendee_email, {_CONFIRMED_AT}, 'confirmation', b.id || ':confirmed', 1, false
    FROM bookings_booking b JOIN bookings_eventtype e ON e.id = b.event_type_id
    CROSS JOIN b_const k
    WHERE e.requires_confirmation AND b.status IN ('SCHEDULED', 'COMPLETED', 'NO_SHOW')
    UNION ALL
    SELECT b.id, b.attendee_email, b.cancelled_at, 'cancellation', b.id || ':cancelled',
           b.ical_sequence, false
    FROM bookings_booking b WHERE b.status = 'CANCELLED' AND b.rescheduled_to_id IS NULL
)
INSERT INTO notifications_emailoutbox (booking_id, kind, event_key, to_email, ical_sequence,
    status, attempts, last_error, created_at, next_attempt_at, sent_at)
SELECT ev.booking_id, ev.kind, ev.event_key, ev.to_email, ev.seq, s.status,
       CASE s.status WHEN 'pending' THEN 1 + r.r % 5 WHEN 'failed' THEN 6
                     WHEN 'superseded' THEN 0 ELSE 1 END,
       CASE WHEN s.status IN ('pending', 'failed')
            THEN nm.errors[r.r % {c["n_errors"]} + 1] ELSE '' END,
       ev.at,
       CASE s.status WHEN 'pending' THEN k.now + (1 + r.r % 30) * interval '1 minute'
                     WHEN 'failed' THEN ev.at + interval '2 hours' ELSE ev.at END,
       CASE WHEN s.status = 'sent' THEN ev.at + (1 + r.r % 20) * interval '1 second' END
FROM ev CROSS JOIN b_const k CROSS JOIN b_names nm
CROSS JOIN LATERAL (SELECT pg_temp.rndt(ev.event_key, 30, 10000) AS r) AS r
CROSS JOIN LATERAL (SELECT CASE
    WHEN ev.at > k.now - interval '1 day' AND r.r < 200 THEN 'pending'
    WHEN r.r < 40 THEN 'failed'
    WHEN ev.supersedable AND r.r < 1040 THEN 'superseded'
    ELSE 'sent' END AS status) AS s
ORDER BY ev.at
"""
