"""The results as Markdown: the issue's table with ratios and targets, the fan-out ladder,
the load client's CPU, and the machine."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from .plan import Plan
from .results import RunResult

MARK_START = "<!-- bench:results:start -->"
MARK_END = "<!-- bench:results:end -->"

Check = Callable[[float, float], bool]


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the results table. ``check(tailcast, basis)`` says whether the target is met;
    the basis is Nchan's figure when ``versus_nchan``, else unused."""

    scenario: str
    key: str
    label: str
    unit: str
    digits: int
    reference: float | None = None
    """The issue's Nchan figure, used when Nchan was not measured in this run."""
    target: str = ""
    check: Check | None = None
    versus_nchan: bool = False


def metrics(plan: Plan) -> list[Metric]:
    """The rows of the issue's table, worded for this plan's sizes."""
    subs, rate = f"{plan.subscribers:,}", f"{plan.latency_rate:g}"
    idle = f"{plan.idle_subscribers:,}"
    small, large = plan.replay_sizes
    return [
        Metric("fanout", "fanout_sustained",
               f"Fan-out, {subs} subscribers: highest sustained deliveries/s with p99 "
               f"≤ {plan.p99_limit_ms:g} ms", "", 0, 70_000, "≥ 1x Nchan (aim 2x)",
               lambda ours, nchan: ours >= nchan, versus_nchan=True),
        Metric("fanout", "fanout_saturation",
               "Fan-out: saturation (most deliveries/s of any step)", "", 0, 83_000),
        Metric("fanout", "latency_p50_ms", f"Latency p50, {subs} subscribers x {rate} items/s",
               "ms", 1, 8, "≤ Nchan's, same run", lambda ours, nchan: ours <= nchan,
               versus_nchan=True),
        Metric("fanout", "latency_p99_ms", f"Latency p99, {subs} subscribers x {rate} items/s",
               "ms", 1, 37),
        Metric("fanout", "cpu_per_delivery_us",
               f"Server CPU per delivery (at {subs} x {rate} items/s)", "µs", 1, 12),
        Metric("replay", f"replay_{small}",
               f"Replay of {small:,} cached items to one new subscriber", "items/s", 0, 35_000,
               "≥ 10x Nchan", lambda ours, nchan: ours >= 10 * nchan, versus_nchan=True),
        Metric("replay", f"replay_{large}", f"Replay of {large:,} cached items", "items/s", 0),
        Metric("replay", f"replay_{large}_seconds",
               f"Replay of {large:,} cached items: time until all arrived", "s", 3, None,
               "< 1 s", lambda ours, _: ours < 1),
        Metric("idle", "idle_kib", f"Idle memory per subscriber, {idle} subscribers", "KiB", 1,
               10, "≤ 20 KiB", lambda ours, _: ours <= 20),
        Metric("idle", "idle_failed", f"Subscribers that failed to connect, of {idle}", "", 0,
               None, "0", lambda ours, _: ours == 0),
        Metric("publish", "publish_1", "Single-item POSTs/s, 1 keep-alive connection", "", 0,
               5_000),
        Metric("publish", "publish_8", "Single-item POSTs/s, 8 keep-alive connections", "", 0,
               50_000, "≥ 8,000/s", lambda ours, _: ours >= 8000),
        Metric("publish", "publish_batch",
               f"Batch POSTs of {plan.batch_size:,} items, 2 connections", "items/s", 0, None,
               "≥ 50,000/s", lambda ours, _: ours >= 50_000),
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Summary:
    """A metric over the runs of one server: median, min and max, and the FAILED runs."""

    median: float
    low: float
    high: float
    runs: int
    failed: dict[str, int]

    def text(self, digits: int) -> str:
        value = _number(self.median, digits)
        if self.runs > 1:
            value += f" ({_number(self.low, digits)}-{_number(self.high, digits)})"
        if self.failed:
            return f"**FAILED** ({_anomalies(self.failed)}); {value}"
        return value


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _anomalies(found: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in sorted(found.items()))


def summarize(runs: list[RunResult], target: str, key: str, scenario: str) -> Summary | None:
    """``key`` over the runs of ``scenario`` on ``target``; any FAILED run of it taints it."""
    mine = [r for r in runs if r.target == target and r.scenario == scenario]
    chosen = [r for r in mine if key in r.figures]
    failed: dict[str, int] = {}
    for run in mine:
        for kind, count in run.anomalies.items():
            failed[kind] = failed.get(kind, 0) + count
    if not chosen:
        return Summary(0, 0, 0, 0, failed) if failed else None
    values = [r.figures[key] for r in chosen]
    return Summary(statistics.median(values), min(values), max(values), len(values), failed)


def results_table(
    plan: Plan, runs: list[RunResult], titles: dict[str, str], compare: bool
) -> list[str]:
    """The issue's figures: each server's median (min-max), the ratio and the target."""
    others = [label for label in titles if label not in ("tailcast", "nchan")]
    head = ["figure", "Tailcast", *(titles[o] for o in others)]
    head += ["Nchan", "Tailcast / Nchan"] if compare else ["Nchan (issue's figure)"]
    head += ["target", "met?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in metrics(plan):
        if metric.scenario not in plan.scenarios:
            continue
        ours = summarize(runs, "tailcast", metric.key, metric.scenario)
        theirs = summarize(runs, "nchan", metric.key, metric.scenario) if compare else None
        row = [f"{metric.label} ({metric.unit})" if metric.unit else metric.label]
        row.append(_cell(ours, metric.digits))
        row += [
            _cell(summarize(runs, other, metric.key, metric.scenario), metric.digits)
            for other in others
        ]
        if compare:
            row.append(_cell(theirs, metric.digits))
            ratio = (
                f"{ours.median / theirs.median:.2f}x"
                if ours and theirs and theirs.median and not (ours.failed or theirs.failed)
                else "—"
            )
            row.append(ratio)
        else:
            row.append("—" if metric.reference is None else f"~{_number(metric.reference, 0)}")
        row.append(metric.target or "—")
        row.append(_met(metric, ours, theirs, compare))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _cell(summary: Summary | None, digits: int) -> str:
    return "—" if summary is None else summary.text(digits)


def _met(metric: Metric, ours: Summary | None, theirs: Summary | None, compare: bool) -> str:
    if metric.check is None:
        return "—"
    if ours is None:
        return "not measured"
    if ours.failed:
        return "**no** (FAILED)"
    basis = 0.0
    suffix = ""
    if metric.versus_nchan:
        if compare and theirs is not None and not theirs.failed:
            basis = theirs.median
        elif metric.reference is not None:
            basis, suffix = metric.reference, " (vs the issue's Nchan figure)"
        else:
            return "—"
    met = metric.check(ours.median, basis)
    if metric.key == "fanout_sustained" and met and basis:
        suffix = (" (2x too)" if ours.median >= 2 * basis else " (not yet 2x)") + suffix
    return ("yes" if met else "**no**") + suffix


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
            f"{_anomalies(found)}."
        )
    return lines


def ladder_table(runs: list[RunResult], titles: dict[str, str]) -> list[str]:
    """The fan-out steps: per publish rate, each server's median deliveries/s and p99."""
    rates = sorted({step.rate for run in runs for step in run.steps})
    if not rates:
        return []
    head = ["items/s", "offered deliveries/s"]
    for title in titles.values():
        head += [f"{title} deliveries/s", f"{title} p99 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    offered = {step.rate: step.offered for run in runs for step in run.steps}
    for rate in rates:
        row = [f"{rate:g}", f"{offered[rate]:,.0f}"]
        for label in titles:
            steps = [s for r in runs if r.target == label for s in r.steps if s.rate == rate]
            if not steps:
                row += ["", ""]
                continue
            delivered = statistics.median(s.delivered for s in steps)
            p99s = [s.p99_ms for s in steps if s.p99_ms is not None]
            mark = "" if all(s.ok for s in steps) else " ✗"
            row.append(f"{delivered:,.0f}{mark}")
            row.append(f"{statistics.median(p99s):.1f}" if p99s else "—")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def client_cpu_lines(runs: list[RunResult], titles: dict[str, str]) -> list[str]:
    """How busy the load client was (cores), where it works hardest."""
    keys = [
        ("fanout", "latency_client_cpu", "latency scenario"),
        ("fanout", "fanout_client_cpu", "fan-out, busiest step"),
        ("publish", "publish_8_client_cpu", "8-connection POSTs"),
    ]
    head = ["load client CPU (cores, all its processes)", *titles.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario, key, name in keys:
        cells = []
        for label in titles:
            summary = summarize(runs, label, key, scenario)
            cells.append("—" if summary is None else f"{summary.median:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    servers = []
    for label in titles:
        summary = summarize(runs, label, "fanout_server_cpu", "fanout")
        servers.append("—" if summary is None else f"{summary.median:.2f}")
    lines.append("| server CPU at that fan-out step | " + " | ".join(servers) + " |")
    return lines


def notes_lines(runs: list[RunResult], titles: dict[str, str]) -> list[str]:
    lines = []
    for run in runs:
        for note in run.notes:
            lines.append(f"- {titles.get(run.target, run.target)}, {run.scenario}: {note}")
    return lines


@dataclass(frozen=True, slots=True)
class Context:
    """When and how the figures were taken, and on what."""

    date: str
    command: str
    facts: dict[str, str]
    """The machine and software, by name."""


def render(
    plan: Plan,
    runs: list[RunResult],
    titles: dict[str, str],
    compare: bool,
    context: Context,
    chart: str | None,
) -> str:
    """The generated results section, between the markers that `splice` looks for."""
    mode = (
        "a quick check (1 run, short steps): not figures to quote"
        if plan.quick
        else f"each figure is the median of {plan.runs} runs (min-max in brackets)"
    )
    out = [MARK_START, "", f"Measured {context.date} with `{context.command}`; {mode}.", ""]
    out += results_table(plan, runs, titles, compare)
    out += [
        "",
        "Ratios are Tailcast / Nchan: above 1 is better for rates, below 1 for latency, CPU "
        "and memory. A run with a duplicate, a gap, an out-of-order id, a reset or a failed "
        "stream is FAILED whatever its speed.",
        "",
        "**Integrity** (every subscriber checks every id and sequence number):",
        "",
        *integrity_lines(runs, titles),
        "",
    ]
    if chart:
        out += [f"![Fan-out: deliveries/s and p99 latency vs publish rate]({chart})", ""]
    ladder = ladder_table(runs, titles)
    if ladder:
        out += [
            f"**Fan-out ladder** ({plan.subscribers:,} subscribers, {plan.step_seconds:g} s per "
            f"step; ✗ = not sustained: p99 over {plan.p99_limit_ms:g} ms, publisher late, "
            "or not drained):",
            "",
            *ladder,
            "",
        ]
    out += ["**Load client**: " + _client_note(), "", *client_cpu_lines(runs, titles), ""]
    notes = notes_lines(runs, titles)
    if notes:
        out += ["**Notes**:", "", *notes, ""]
    out += ["**Machine**:", ""]
    out += [f"- {name}: {value}" for name, value in context.facts.items()]
    out += ["", MARK_END]
    return "\n".join(out) + "\n"


def _client_note() -> str:
    return (
        "its processes share the machine with the server; when the client's CPU plus the "
        "server's nears the core count, the client may be what limits a figure."
    )


def splice(document: str, section: str) -> str:
    """``document`` with the generated section replaced (or appended if it has none)."""
    start, end = document.find(MARK_START), document.find(MARK_END)
    if start < 0 or end < start:
        return document.rstrip("\n") + "\n\n" + section
    return document[:start] + section.rstrip("\n") + document[end + len(MARK_END) :]
