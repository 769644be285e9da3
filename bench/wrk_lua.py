"""The Lua scripts bench/wrk_bench.py hands to wrk, one per kind of scenario.

Every script counts each response that is not 2xx (wrk's own ``status`` error counts only
4xx/5xx) and keeps the first one's status and body; ``done`` prints one line
``WRK_JSON {…}`` with the totals, the latency percentiles (µs) and, for the scripts that walk a
list of ids or of time slots, how far they got (``used``: requests made by the busiest
thread) and how many requests found the list exhausted.

Time slots: slot ``s`` of a window starts ``(s % slots) * 15`` minutes after the window's
start, in round ``s // slots``. The bench team's intro call is 15 minutes, round robin over
10 hosts, so each time holds 10 bookings, one per round: every request finds a free host,
and two requests in flight never want the same time. A request past round 9 is counted as
exhausted.
"""

from string import Template

COMMON = Template(
    r"""
local threads, next_tid = {}, 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

nthreads = $threads
non2xx, exhausted, used, sample = 0, 0, 0, ""

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local bad, out, most = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    out = out + t:get("exhausted")
    most = math.max(most, t:get("used"))
    local s = t:get("sample")
    if s ~= "" then io.write("WRK_SAMPLE " .. (string.gsub(s, "[\r\n]", " ")) .. "\n") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "exhausted": %d, "used": %d}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    out, most))
end

-- The n-th request of this thread across all threads: 0, 1, 2, … with no two alike.
function next_index()
  local index = $offset + used * nthreads + tid
  used = used + 1
  return index
end

-- "2031-05-13T09:15:00Z" for slot s of the window starting at epoch second `start`.
function slot_time(start, slots, s)
  if s >= 10 * slots then exhausted = exhausted + 1 end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", start + (s % slots) * 900)
end
"""
)

# A fixed GET: wrk sends the same bytes each time (the plain view without a key).
FIXED = Template(
    r"""
wrk.method = "GET"
if "$secret" ~= "" then wrk.headers["Authorization"] = "Bearer $secret" end
"""
)

# A create at a new time each request; with keyed, a new Idempotency-Key each request too.
CREATE = Template(
    r"""
local headers = {["Authorization"] = "Bearer $secret", ["Content-Type"] = "application/json"}
function request()
  local s = next_index()
  local body = '{"event_type_id": "$event_type", "requested_time": "' ..
    slot_time($start, $slots, s) ..
    '", "attendee": {"name": "Wrk Bench", "email": "wrk-bench@example.com"}}'
  if $keyed then headers["Idempotency-Key"] = "wrk-$run-create-" .. s end
  return wrk.format("POST", "/v1/bookings", headers, body)
end
"""
)

# The same create, key and body every time: after the first, each is a replay.
REPLAY = Template(
    r"""
wrk.method = "POST"
wrk.path = "/v1/bookings"
wrk.headers["Authorization"] = "Bearer $secret"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Idempotency-Key"] = "$key"
wrk.body = '$body'
"""
)

# One request per booking of the ids file, each booking once: confirm, cancel, PATCH the
# attendee's email (a new address each time), reschedule (a new time each time).
WALK = Template(
    r"""
local ids = {}
function init(args)
  for line in io.lines("$ids_file") do ids[#ids + 1] = line end
end

local headers = {["Authorization"] = "Bearer $secret", ["Content-Type"] = "application/json"}
local action = "$action"
function request()
  local k = next_index()
  local id = ids[k + 1]
  if id == nil then
    exhausted = exhausted + 1
    id = ids[#ids]
  end
  if action == "patch" then
    local body = '{"attendee": {"email": "wrk-$run-' .. k .. '@example.com"}}'
    return wrk.format("PATCH", "/v1/bookings/" .. id, headers, body)
  elseif action == "reschedule" then
    local body = '{"requested_time": "' .. slot_time($start, $slots, k) .. '"}'
    return wrk.format("POST", "/v1/bookings/" .. id .. "/reschedule", headers, body)
  elseif action == "cancel" then
    return wrk.format("POST", "/v1/bookings/" .. id .. "/cancel", headers,
                      '{"reason": "wrk bench"}')
  end
  return wrk.format("POST", "/v1/bookings/" .. id .. "/" .. action, headers, "{}")
end
"""
)


def script(kind: str, *, threads: int, offset: int = 0, **values) -> str:
    """The Lua source of one scenario: the common part, then the kind's."""
    body = {"fixed": FIXED, "create": CREATE, "replay": REPLAY, "walk": WALK}[kind]
    return COMMON.substitute(threads=threads, offset=offset) + body.substitute(values)
