"""bench/wrk_bench.py's table: each scenario's figures, the issue's ratios beside their targets."""

import json
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Row:
    key: str
    name: str
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int = 0
    exhausted: int = 0  # requests that found no pre-created booking or free slot left
    sample: str = ""  # the first non-2xx or error
    used: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors and not self.exhausted


# (row it is printed under, label, numerator row, denominator row, measure, comparison, target)
RATIOS = [
    ("round_trips", "÷ plain", "round_trips", "plain", "rate", None, None),
    ("get", "÷ plain", "get", "plain", "rate", ">=", 0.5),
    ("get", "÷ its round trips alone", "get", "round_trips", "rate", None, None),
    ("list", "÷ plain", "list", "plain", "rate", ">=", 0.2),
    # Measured in the order first, deep, deep, first: the ratio of the sums of the p50s.
    (
        "deep_first_again",
        "both deep p50s ÷ both first pages'",
        ("deep", "deep_again"),
        ("deep_first", "deep_first_again"),
        "p50_ms",
        "<=",
        1.1,
    ),
    ("create", "÷ plain", "create", "plain", "rate", ">=", 0.12),
    ("create", "÷ pgbench replay", "create", "pgbench", "rate", ">=", 0.6),
    ("keyed", "÷ plain", "keyed", "plain", "rate", None, None),
    ("replay", "÷ plain", "replay", "plain", "rate", ">=", 0.5),
    ("confirm", "÷ plain", "confirm", "plain", "rate", None, None),
    ("cancel", "÷ plain", "cancel", "plain", "rate", None, None),
    ("patch", "÷ plain", "patch", "plain", "rate", None, None),
    ("reschedule", "÷ plain", "reschedule", "plain", "rate", None, None),
    ("get_again", "÷ the first GET", "get_again", "get", "rate", None, None),
    ("open_loop", "p99 ÷ p50", "open_loop", "open_loop", "p99/p50", "<=", 2.0),
    (
        "open_loop_plain",
        "p99 ÷ p50 (Django's own)",
        "open_loop_plain",
        "open_loop_plain",
        "p99/p50",
        None,
        None,
    ),
    # Measured in the order 1M, 10k, 10k, 1M: the machine's drift during the four cancels out.
    (
        "create_small_again",
        "both creates at 1M ÷ both here",
        ("create", "create_again"),
        ("create_small", "create_small_again"),
        "rate",
        ">=",
        0.9,
    ),
    ("plain_end", "÷ the first (the machine's drift)", "plain_end", "plain", "rate", None, None),
]
_COMPARE = {">=": operator.ge, "<=": operator.le}


def _ratio(rows: dict, spec) -> dict | None:
    under, label, top, bottom, measure, comparison, target = spec
    if isinstance(top, tuple):  # the sum of several rows' rates
        if not all(key in rows for key in (*top, *bottom)):
            return None
        a, b = (_summed([rows[key] for key in keys]) for keys in (top, bottom))
    elif top not in rows or bottom not in rows:
        return None
    else:
        a, b = rows[top], rows[bottom]
    if measure == "p99/p50":
        value = a.p99_ms / a.p50_ms if a.p50_ms else None
    else:
        x, y = getattr(a, measure), getattr(b, measure)
        value = x / y if x is not None and y else None
    if value is None:
        status = "n/a"
    elif not (a.valid and b.valid):
        status = "INVALID"
    elif comparison is None:
        status = ""
    else:
        status = "ok" if _COMPARE[comparison](value, target) else "MISS"
    shown = f"{comparison.replace('>=', '≥').replace('<=', '≤')} {target:g}" if comparison else ""
    return {"row": under, "label": label, "value": value, "target": shown, "status": status}


def _summed(rows: list[Row]) -> Row:
    valid = all(row.valid for row in rows)
    p50s = [row.p50_ms for row in rows]
    p50 = None if None in p50s else sum(p50s)
    return Row(key="+", name="+", rate=sum(row.rate for row in rows), p50_ms=p50, p99_ms=None,
               errors=0 if valid else 1)  # fmt: skip


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(rows: list[Row], *, meta: dict, memory: dict, celery: dict, path: Path) -> None:
    by_key = {row.key: row for row in rows}
    for open_loop in (by_key.get("open_loop"), by_key.get("open_loop_plain")):
        if open_loop and open_loop.rate < 0.95 * open_loop.extra["rate"]:
            # The server could not take the rate asked: not a measure at 80 % of its peak.
            open_loop.exhausted = round(open_loop.extra["rate"] - open_loop.rate)
            asked = open_loop.extra["rate"]
            open_loop.sample = f"achieved {open_loop.rate:.0f}/s of {asked:.0f}/s"
    ratios = [r for r in (_ratio(by_key, spec) for spec in RATIOS) if r is not None]
    if "deep" in by_key and meta["deep_depth"] < 0.99 * meta["depth_asked"]:
        for ratio in ratios:
            if ratio["row"] == "deep_first_again":
                ratio["status"] = f"SHALLOW (asked {meta['depth_asked']:,})"

    print(
        f"\n{meta['database']} ({meta['bookings']:,} bookings), gunicorn {meta['workers']} sync "
        f"workers, wrk {meta['connections']} connections / {meta['threads']} threads, "
        f"{meta['seconds']} s per scenario after {meta['warmup']} s warm-up, {meta['cores']} "
        f"cores, commit {meta['commit']}{' (dirty)' if meta['dirty'] else ''}\n"
    )
    header = f"{'scenario':56} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    print(f"{header}  {'ratio':30} {'target':>7}  ok")
    for row in rows:
        mine = [r for r in ratios if r["row"] == row.key] or [None]
        for n, ratio in enumerate(mine):
            if n == 0:
                errors = f"{row.errors}" + (f"+{row.exhausted}!" if row.exhausted else "")
                line = (
                    f"{row.name[:56]:56} {row.rate:8.1f} {_ms(row.p50_ms):>8} "
                    f"{_ms(row.p99_ms):>8} {errors:>6}"
                )
            else:
                line = " " * 90
            if ratio is not None:
                value = "-" if ratio["value"] is None else f"{ratio['value']:.3f}"
                text = f"{value} {ratio['label']}"
                line += f"  {text:30} {ratio['target']:>7}  {ratio['status']}"
            print(line.rstrip())

    _cpu_table(rows)
    print()
    for row in rows:
        if not row.valid:
            problem = f"{row.errors} errors" if row.errors else ""
            if row.exhausted and row.key.startswith("open_loop"):
                problem += " the server could not keep up with the rate asked"
            elif row.exhausted:
                problem += f" {row.exhausted} requests past the prepared bookings/slots"
            print(f"INVALID {row.name}: {problem.strip()}; first: {row.sample[:200]}")
    workers = ", ".join(f"{kib / 1024:.0f}" for kib in memory["workers_kib"])
    pss = ", ".join(f"{kib / 1024:.0f}" for kib in memory["workers_pss_kib"])
    print(
        f"gunicorn after the run: workers {workers} MiB resident (PSS {pss}), master "
        f"{memory['master_kib'] / 1024:.0f} MiB; {memory['workers_recycled']} worker(s) "
        "recycled (max_requests) during the run"
    )
    celery_rss = ", ".join(f"{kib / 1024:.0f}" for kib in celery["rss_kib"])
    rate = celery["sent"] / celery["drain_s"] if celery["drain_s"] else 0
    print(
        f"Celery (2 processes): {celery['sent']:,} emails sent of {celery['queued']:,} queued, "
        f"first after {celery['start_s']:.1f} s (start-up), then {celery['drain_s']:.1f} s "
        f"({rate:.0f}/s); {celery['left_in_queue']} left; resident {celery_rss} MiB "
        "(main, then pool processes)"
    )
    path.write_text(
        json.dumps(
            {
                "meta": meta,
                "rows": [asdict(row) for row in rows],
                "ratios": ratios,
                "memory": memory,
                "celery": celery,
            },
            indent=2,
        )
    )
    busy = sum(meta["other_cpu_s"].values())
    if busy > 0.05 * meta["wall_s"] * meta["cores"]:
        top = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in meta["other_cpu_s"].items())
        print(
            f"\nWARNING: other processes used {busy:.0f} CPU-seconds during the "
            f"{meta['wall_s']:.0f} s run ({top}): the figures are disturbed; run it again on "
            "a quiet machine."
        )
    print(f"\nWritten to {path}")


def _cpu_table(rows: list[Row]) -> None:
    """Where each request's CPU went (the measured phase, all processes on the machine)."""
    parts = ("gunicorn", "postgres", "redis", "load", "other")
    print(f"\nCPU per request, µs: {'scenario':46} " + "".join(f"{p:>9}" for p in parts), end="")
    print(f"{'total':>9}")
    for row in rows:
        cpu = row.extra.get("cpu_us")
        if cpu:
            cells = "".join(f"{cpu[p]:9.0f}" for p in parts)
            print(f"{'':21}{row.name[:46]:46} {cells}{sum(cpu.values()):9.0f}")
