"""What the scenarios measured: per-run figures, fan-out steps and integrity anomalies, and
a figure summed up over runs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(slots=True)
class Step:
    """One publish rate of the fan-out ladder (or the latency scenario's fixed rate)."""

    rate: float
    """Items/s the publisher was asked for."""
    offered: float
    """Deliveries/s that rate means: rate times subscribers."""
    delivered: float
    """Deliveries/s the subscribers received, over the step and its drain."""
    p50_ms: float | None
    p99_ms: float | None
    lag_s: float
    """How late the publisher finished its schedule."""
    drained: bool
    """Whether every stream received the step's last item within the drain time."""
    deliveries: int
    wall_s: float
    """Wall time from the step's first publish to the end of its drain."""
    server_cpu: float
    """Server CPU over the step, in cores (1.0 = one core busy)."""
    client_cpu: float
    """Load client CPU (all its processes) over the step, in cores."""
    post_p50_ms: float | None = None
    """Sequential producers: the median POST round trip (send to response) over the step."""
    post_p99_ms: float | None = None
    anomalies: dict[str, int] = field(default_factory=dict)
    ok: bool = False
    """Sustained: on schedule, drained, p99 within the limit and no anomaly."""
    tries: int = 1
    """2 when the first try at this rate was not sustained (without an anomaly)."""


@dataclass(slots=True)
class RunResult:
    """One run of one scenario against one server."""

    scenario: str
    target: str
    figures: dict[str, float] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """A run with any anomaly (a gap, a duplicate, an error) is FAILED whatever its speed."""
        return bool(self.anomalies)

    def add_anomalies(self, found: dict[str, int]) -> None:
        for kind, count in found.items():
            self.anomalies[kind] = self.anomalies.get(kind, 0) + count


@dataclass(frozen=True, slots=True)
class Summary:
    """A figure over the runs of one server: median, min and max, and the FAILED runs."""

    median: float
    low: float
    high: float
    runs: int
    failed: dict[str, int]

    def text(self, digits: int) -> str:
        value = number(self.median, digits)
        if self.runs > 1:
            value += f" ({number(self.low, digits)}-{number(self.high, digits)})"
        if self.failed:
            return f"**FAILED** ({anomaly_text(self.failed)}); {value}"
        return value


def number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def anomaly_text(found: dict[str, int]) -> str:
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
