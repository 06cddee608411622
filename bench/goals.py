"""The targets of issue 13 (the Redis backend) and issue 15 (the memory backend), and
whether a bench run met them.

A target is a figure of one server, or the ratio of two servers' figures measured in the
same run, against a bound; it is never checked against a figure from another run.
"""

from __future__ import annotations

from dataclasses import dataclass

from .plan import (
    BARE,
    BARE_WORKERS,
    LATENCY_SCENARIO,
    MEMORY,
    NCHAN,
    REDIS,
    REDIS_WORKERS,
    SEQUENTIAL_4,
    Plan,
)
from .results import RunResult, Summary, number, summarize


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of one server: a key of a scenario's results."""

    server: str
    scenario: str
    key: str


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The same ratio for reference servers in the same run: what the machine allows."""

    name: str
    figure: Figure
    versus: Figure


@dataclass(frozen=True, slots=True)
class Goal:
    """``figure`` (divided by ``versus``, when given) at least (or ``at_most``) ``bound``."""

    issue: int
    text: str
    figure: Figure
    bound: float
    versus: Figure | None = None
    at_most: bool = False
    unit: str = ""
    digits: int = 0
    ceiling: Ceiling | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    measured: str
    met: str


def goals(plan: Plan) -> list[Goal]:
    """Both issues' targets, worded for this plan's sizes."""
    subs, rate = f"{plan.subscribers:,}", f"{plan.latency_rate:g}"
    at_rate = f"at {rate} items/s x {subs} subscribers (1 sequential producer)"
    seq4, lat = "fanout-seq4", LATENCY_SCENARIO
    sustained = f"sustained deliveries/s to {subs} subscribers, p99 ≤ {plan.p99_limit_ms:g} ms"
    return [
        Goal(13, f"Fan-out, {SEQUENTIAL_4.title}: Redis ≥ 0.7x memory ({sustained})",
             Figure(REDIS, seq4, "fanout_sustained"), 0.7,
             Figure(MEMORY, seq4, "fanout_sustained")),
        Goal(13, f"Fan-out, {SEQUENTIAL_4.title}: Redis server CPU per delivery at saturation "
             "≤ 2 µs", Figure(REDIS, seq4, "saturation_cpu_us"), 2, at_most=True, unit="µs",
             digits=2),
        Goal(13, "Single-item POSTs/s, 8 connections: Redis ≥ memory",
             Figure(REDIS, "publish", "publish_8"), 1, Figure(MEMORY, "publish", "publish_8")),
        Goal(13, "Single-item POSTs/s, 8 connections: Redis with --workers 2 ≥ 1.6x one worker",
             Figure(REDIS_WORKERS, "publish", "publish_8"), 1.6,
             Figure(REDIS, "publish", "publish_8"),
             ceiling=Ceiling("the bare app's 2 workers / 1",
                             Figure(BARE_WORKERS, "publish", "publish_8"),
                             Figure(BARE, "publish", "publish_8"))),
        Goal(13, f"Batch POSTs of {plan.batch_size:,} items: Redis ≥ 100,000 items/s",
             Figure(REDIS, "publish", "publish_batch"), 100_000, unit="items/s"),
        Goal(13, f"Latency p50 {at_rate}: Redis ≤ 1.2x memory",
             Figure(REDIS, lat, "latency_p50_ms"), 1.2, Figure(MEMORY, lat, "latency_p50_ms"),
             at_most=True),
        Goal(15, f"Fan-out, 1 sequential producer: memory ≥ 2x Nchan ({sustained})",
             Figure(MEMORY, lat, "fanout_sustained"), 2, Figure(NCHAN, lat, "fanout_sustained")),
        Goal(15, f"POST round trip p99 {at_rate}: memory ≤ 5 ms",
             Figure(MEMORY, lat, "post_p99_ms"), 5, at_most=True, unit="ms", digits=1),
        Goal(15, "Single-item POSTs/s, 8 connections: memory ≥ 0.7x the bare uvicorn app",
             Figure(MEMORY, "publish", "publish_8"), 0.7, Figure(BARE, "publish", "publish_8")),
        Goal(15, "Single-item POSTs/s, 1 connection: memory ≥ 0.8x the bare uvicorn app",
             Figure(MEMORY, "publish", "publish_1"), 0.8, Figure(BARE, "publish", "publish_1")),
        Goal(15, f"Idle memory per subscriber at {plan.idle_subscribers:,}: memory ≤ 10 KiB",
             Figure(MEMORY, "idle", "idle_kib"), 10, at_most=True, unit="KiB", digits=1),
        Goal(15, f"Latency p50 {at_rate}: memory ≤ Nchan's",
             Figure(MEMORY, lat, "latency_p50_ms"), 1, Figure(NCHAN, lat, "latency_p50_ms"),
             at_most=True),
        Goal(15, f"No regression: fan-out, {SEQUENTIAL_4.title}: memory ≥ 8x Nchan",
             Figure(MEMORY, seq4, "fanout_sustained"), 8, Figure(NCHAN, seq4, "fanout_sustained")),
        Goal(15, f"No regression: replay of {plan.replay_sizes[0]:,} cached items: memory ≥ 10x "
             "Nchan", Figure(MEMORY, "replay", f"replay_{plan.replay_sizes[0]}"), 10,
             Figure(NCHAN, "replay", f"replay_{plan.replay_sizes[0]}")),
    ]  # fmt: skip


def _summary(runs: list[RunResult], figure: Figure) -> Summary | None:
    return summarize(runs, figure.server, figure.key, figure.scenario)


def judge(goal: Goal, runs: list[RunResult]) -> Verdict:
    """What was measured for ``goal`` and whether it is met; a FAILED run never meets one."""
    value = _summary(runs, goal.figure)
    basis = _summary(runs, goal.versus) if goal.versus else None
    if value is None or (goal.versus and basis is None):
        return Verdict("—", "not measured")
    if value.failed or (basis is not None and basis.failed):
        return Verdict("—", "**no** (a FAILED run)")
    if basis is None:
        measured = value.median
        shown = f"{number(measured, goal.digits)} {goal.unit}".rstrip()
    elif basis.median == 0:
        return Verdict("— (the reference measured 0)", "—")
    else:
        measured = value.median / basis.median
        shown = f"{measured:.2f}x{_beside(goal.ceiling, runs)}"
    met = measured <= goal.bound if goal.at_most else measured >= goal.bound
    return Verdict(shown, "yes" if met else "**no**")


def _beside(ceiling: Ceiling | None, runs: list[RunResult]) -> str:
    """The reference's ratio, to show beside a measured one, when both ran."""
    if ceiling is None:
        return ""
    top, bottom = _summary(runs, ceiling.figure), _summary(runs, ceiling.versus)
    if top is None or bottom is None or not bottom.median:
        return ""
    return f" ({ceiling.name}: {top.median / bottom.median:.2f}x)"
