"""The results as Markdown: the issues' targets, each figure with its producer pattern and
the ratios between servers, the fan-out ladders, the load client's CPU, and the machine."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .goals import goals, judge
from .plan import (
    BARE,
    BARE_WORKERS,
    FANOUT_PATTERNS,
    LATENCY_SCENARIO,
    MEMORY,
    NCHAN,
    REDIS,
    REDIS_WORKERS,
    SEQUENTIAL_1,
    Plan,
)
from .results import RunResult, Summary, anomaly_text, summarize

MARK_START = "<!-- bench:results:start -->"
MARK_END = "<!-- bench:results:end -->"

_SHORT = {
    MEMORY: "memory",
    REDIS: "Redis",
    REDIS_WORKERS: "Redis 2 workers",
    NCHAN: "Nchan",
    BARE: "bare app",
    BARE_WORKERS: "bare app 2 workers",
}
"""Servers' names in ratio columns."""


@dataclass(frozen=True, slots=True)
class Row:
    """One figure of a table: a key of a scenario's results, and how it was produced."""

    scenario: str
    key: str
    label: str
    pattern: str
    unit: str = ""
    digits: int = 0


@dataclass(frozen=True, slots=True)
class Table:
    """Figures of some servers side by side, and ratios between pairs of them."""

    title: str
    servers: tuple[str, ...]
    ratios: tuple[tuple[str, str], ...]
    rows: list[Row]


def tables(plan: Plan) -> list[Table]:
    """The figures, by theme: fan-out and latency, publishing, replay and idle memory."""
    return [_fanout_table(plan), _publish_table(plan), _replay_idle_table(plan)]


def _fanout_table(plan: Plan) -> Table:
    subs, rate = f"{plan.subscribers:,}", f"{plan.latency_rate:g}"
    rows: list[Row] = []
    figures = [
        ("fanout_sustained", f"Fan-out to {subs} subscribers: highest sustained deliveries/s "
         f"(p99 ≤ {plan.p99_limit_ms:g} ms)", "", 0),
        ("fanout_saturation", "Fan-out: saturation (most deliveries/s of any step)", "", 0),
        ("saturation_cpu_us", "Server CPU per delivery at saturation", "µs", 2),
        ("sustained_post_p99_ms", "POST round trip p99 at the highest sustained step", "ms", 1),
    ]  # fmt: skip
    for key, label, unit, digits in figures:
        for scenario, pattern in FANOUT_PATTERNS.items():
            if key == "sustained_post_p99_ms" and pattern.pipelined:
                continue
            rows.append(Row(scenario, key, label, pattern.title, unit, digits))
    at = f"{rate} items/s x {subs} subscribers"
    for key, label, unit, digits in [
        ("latency_p50_ms", f"Latency p50, {at}", "ms", 1),
        ("latency_p99_ms", f"Latency p99, {at}", "ms", 1),
        ("post_p50_ms", f"POST round trip p50, {at}", "ms", 1),
        ("post_p99_ms", f"POST round trip p99, {at}", "ms", 1),
        ("cpu_per_delivery_us", f"Server CPU per delivery, {at}", "µs", 1),
    ]:
        rows.append(Row(LATENCY_SCENARIO, key, label, SEQUENTIAL_1.title, unit, digits))
    return Table(
        "Fan-out and latency",
        (MEMORY, REDIS, NCHAN),
        ((REDIS, MEMORY), (MEMORY, NCHAN), (REDIS, NCHAN)),
        rows,
    )


def _publish_table(plan: Plan) -> Table:
    one, eight = "1 sequential producer", "8 concurrent sequential producers"
    batch = f"2 concurrent sequential producers, {plan.batch_size:,}-item batches"
    rows = [
        Row("publish", "publish_1", "Single-item POSTs/s, no subscribers", one),
        Row("publish", "publish_8", "Single-item POSTs/s, no subscribers", eight),
        Row("publish", "publish_batch", "Batch POSTs, no subscribers", batch, "items/s"),
        Row("publish", "publish_1_p99_ms", "POST round trip p99, single items", one, "ms", 1),
        Row("publish", "publish_8_p99_ms", "POST round trip p99, single items", eight, "ms", 1),
    ]
    return Table(
        "Publishing (each producer on a keep-alive connection of its own)",
        (MEMORY, REDIS, REDIS_WORKERS, NCHAN, BARE, BARE_WORKERS),
        (
            (REDIS, MEMORY),
            (REDIS_WORKERS, REDIS),
            (BARE_WORKERS, BARE),
            (MEMORY, NCHAN),
            (MEMORY, BARE),
            (REDIS, BARE),
        ),
        rows,
    )


def _replay_idle_table(plan: Plan) -> Table:
    small, large = plan.replay_sizes
    filled = "cache filled first; one new subscriber"
    idle = f"{plan.idle_subscribers:,}"
    rows = [
        Row("replay", f"replay_{small}", f"Replay of {small:,} cached items", filled, "items/s"),
        Row("replay", f"replay_{large}", f"Replay of {large:,} cached items", filled, "items/s"),
        Row("replay", f"replay_{large}_seconds", f"Replay of {large:,} cached items: time",
            filled, "s", 3),
        Row("idle", "idle_kib", f"Idle memory per subscriber, {idle} subscribers",
            "no producer", "KiB", 1),
        Row("idle", "idle_failed", f"Subscribers that failed to connect, of {idle}",
            "no producer"),
    ]  # fmt: skip
    return Table(
        "Replay and idle memory",
        (MEMORY, REDIS, NCHAN),
        ((REDIS, MEMORY), (MEMORY, NCHAN), (REDIS, NCHAN)),
        rows,
    )


def table_lines(
    table: Table, plan: Plan, runs: list[RunResult], titles: dict[str, str]
) -> list[str]:
    """``table`` for the servers measured in this run; nothing when none of its rows ran."""
    rows = [row for row in table.rows if row.scenario in plan.scenarios]
    servers = [s for s in table.servers if s in titles]
    ratios = [(a, b) for a, b in table.ratios if a in titles and b in titles]
    if not rows or not servers:
        return []
    head = ["figure", "producer pattern", *(titles[s] for s in servers)]
    head += [f"{_SHORT.get(a, a)} / {_SHORT.get(b, b)}" for a, b in ratios]
    lines = [f"**{table.title}**:", "", _cells(head), "|" + "---|" * len(head)]
    for row in rows:
        summaries = {s: summarize(runs, s, row.key, row.scenario) for s in servers}
        if not any(summaries.values()):
            continue
        label = f"{row.label} ({row.unit})" if row.unit else row.label
        cells = [label, row.pattern]
        cells += [_text(summaries[s], row.digits) for s in servers]
        cells += [_ratio(summaries[a], summaries[b]) for a, b in ratios]
        lines.append(_cells(cells))
    return [*lines, ""]


def _text(summary: Summary | None, digits: int) -> str:
    return "—" if summary is None else summary.text(digits)


def _cells(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _ratio(top: Summary | None, bottom: Summary | None) -> str:
    if top is None or bottom is None or top.failed or bottom.failed or not bottom.median:
        return "—"
    return f"{top.median / bottom.median:.2f}x"


def goal_lines(plan: Plan, runs: list[RunResult]) -> list[str]:
    """Each issue's targets: what this run measured, and met or not."""
    lines = [_cells(["issue", "target", "measured", "met?"]), "|---|---|---|---|"]
    for goal in goals(plan):
        verdict = judge(goal, runs)
        lines.append(_cells([f"#{goal.issue}", goal.text, verdict.measured, verdict.met]))
    return lines


def integrity_lines(runs: list[RunResult], titles: dict[str, str]) -> list[str]:
    """Per server: clean, or the anomalies found (every run checks ids and sequence numbers)."""
    lines = []
    for label, title in titles.items():
        mine = [r for r in runs if r.target == label]
        bad = [r for r in mine if r.failed]
        if not bad:
            lines.append(f"- {title}: {len(mine)} scenario runs, no duplicate, gap or error.")
            continue
        found: dict[str, int] = {}
        for run in bad:
            for kind, count in run.anomalies.items():
                found[kind] = found.get(kind, 0) + count
        names = ", ".join(sorted({r.scenario for r in bad}))
        lines.append(
            f"- {title}: **FAILED**: {len(bad)} of {len(mine)} scenario runs ({names}): "
            f"{anomaly_text(found)}."
        )
    return lines


def ladder_lines(plan: Plan, runs: list[RunResult], titles: dict[str, str]) -> list[str]:
    """Per producer pattern, the fan-out steps: each server's median deliveries/s and p99
    (and, for sequential producers, the POST round trip's p99)."""
    lines: list[str] = []
    for scenario, pattern in FANOUT_PATTERNS.items():
        mine = [r for r in runs if r.scenario == scenario]
        rates = sorted({step.rate for run in mine for step in run.steps})
        servers = [label for label in titles if any(r.target == label for r in mine)]
        if not rates:
            continue
        head = ["items/s", "offered deliveries/s"]
        for label in servers:
            head += [f"{titles[label]} deliveries/s", "p99 ms"]
            head += [] if pattern.pipelined else ["POST p99 ms"]
        lines += [f"*{pattern.title}*:", "", _cells(head), "|" + "---|" * len(head)]
        offered = {step.rate: step.offered for run in mine for step in run.steps}
        for rate in rates:
            row = [f"{rate:g}", f"{offered[rate]:,.0f}"]
            for label in servers:
                steps = [s for r in mine if r.target == label for s in r.steps if s.rate == rate]
                if not steps:
                    row += [""] * (2 if pattern.pipelined else 3)
                    continue
                delivered = statistics.median(s.delivered for s in steps)
                mark = "" if all(s.ok for s in steps) else " ✗"
                row += [f"{delivered:,.0f}{mark}", _median_ms([s.p99_ms for s in steps])]
                if not pattern.pipelined:
                    row.append(_median_ms([s.post_p99_ms for s in steps]))
            lines.append(_cells(row))
        lines.append("")
    return lines


def _median_ms(values: list[float | None]) -> str:
    present = [value for value in values if value is not None]
    return f"{statistics.median(present):.1f}" if present else "—"


def client_cpu_lines(plan: Plan, runs: list[RunResult], titles: dict[str, str]) -> list[str]:
    """How busy the load client was (cores), where it works hardest, and the server then."""
    keys = [(LATENCY_SCENARIO, "latency_client_cpu", f"latency step ({SEQUENTIAL_1.title})")]
    keys += [
        (scenario, "fanout_client_cpu", f"fan-out, busiest step ({pattern.title})")
        for scenario, pattern in FANOUT_PATTERNS.items()
    ]
    keys.append(("publish", "publish_8_client_cpu", "single-item POSTs, 8 connections"))
    keys += [
        (scenario, "fanout_server_cpu", f"server, at that fan-out step ({pattern.title})")
        for scenario, pattern in FANOUT_PATTERNS.items()
    ]
    head = ["CPU (cores; the load client: all its processes)", *titles.values()]
    lines = [_cells(head), "|" + "---|" * len(head)]
    for scenario, key, name in keys:
        if scenario not in plan.scenarios:
            continue
        cells = []
        for label in titles:
            summary = summarize(runs, label, key, scenario)
            cells.append("—" if summary is None else f"{summary.median:.2f}")
        lines.append(_cells([name, *cells]))
    return lines


def notes_lines(runs: list[RunResult], titles: dict[str, str]) -> list[str]:
    lines = []
    for run in runs:
        for note in run.notes:
            text = " ".join(note.split())  # a server's log tail, on one line
            lines.append(f"- {titles.get(run.target, run.target)}, {run.scenario}: {text}")
    return lines


@dataclass(frozen=True, slots=True)
class Context:
    """When and how the figures were taken, and on what."""

    date: str
    command: str
    facts: dict[str, str]
    """The machine and software, by name."""


def _mode(plan: Plan) -> str:
    if plan.quick:
        return "a quick check (1 run, short steps): not figures to quote"
    mode = f"each figure is the median of {plan.runs} runs (min-max in brackets)"
    once = [name for name in plan.once if name in plan.scenarios]
    if once and plan.runs > 1:
        mode += f", except {' and '.join(once)}: 1 run each"
    return mode


def render(
    plan: Plan,
    runs: list[RunResult],
    titles: dict[str, str],
    context: Context,
    chart: str | None,
) -> str:
    """The generated results section, between the markers that `splice` looks for."""
    out = [MARK_START, "", f"Measured {context.date} with `{context.command}`; {_mode(plan)}."]
    out += ["", "**Targets** (issues 13 and 15; ratios of figures from this run):", ""]
    out += [*goal_lines(plan, runs), ""]
    for table in tables(plan):
        out += table_lines(table, plan, runs, titles)
    out += [
        "Ratios are of medians: above 1 is better for rates, below 1 for latency, CPU and "
        "memory. A sequential producer sends one item and waits for its response before the "
        "next; a pipelined one sends on schedule without waiting. A run with a duplicate, a "
        "gap, an out-of-order id, a reset or a failed stream is FAILED whatever its speed.",
        "",
        "**Integrity** (every subscriber checks every id and sequence number):",
        "",
        *integrity_lines(runs, titles),
        "",
    ]
    if chart:
        out += [f"![Fan-out: deliveries/s and p99 latency vs publish rate]({chart})", ""]
    ladder = ladder_lines(plan, runs, titles)
    if ladder:
        out += [
            f"**Fan-out ladders** ({plan.subscribers:,} subscribers, {plan.step_seconds:g} s "
            f"per step; ✗ = not sustained: p99 over {plan.p99_limit_ms:g} ms, producers "
            "late, or not drained):",
            "",
            *ladder,
        ]
    out += ["**CPU**: " + _client_note(), "", *client_cpu_lines(plan, runs, titles), ""]
    notes = notes_lines(runs, titles)
    if notes:
        out += ["**Notes**:", "", *notes, ""]
    out += ["**Machine**:", ""]
    out += [f"- {name}: {value}" for name, value in context.facts.items()]
    out += ["", MARK_END]
    return "\n".join(out) + "\n"


def _client_note() -> str:
    return (
        "the load client's processes share the machine with the server; when the client's "
        "CPU plus the server's nears the core count, the client may be what limits a figure."
    )


def splice(document: str, section: str) -> str:
    """``document`` with the generated section replaced (or appended if it has none)."""
    start, end = document.find(MARK_START), document.find(MARK_END)
    if start < 0 or end < start:
        return document.rstrip("\n") + "\n\n" + section
    return document[:start] + section.rstrip("\n") + document[end + len(MARK_END) :]
