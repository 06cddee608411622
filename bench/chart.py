"""The fan-out chart: per producer pattern, deliveries/s and p99 latency against the publish
rate, per server."""

from __future__ import annotations

import statistics
from pathlib import Path

from .plan import FANOUT_PATTERNS
from .results import RunResult


def fanout_chart(
    runs: list[RunResult], titles: dict[str, str], subscribers: int, limit_ms: float, path: Path
) -> bool:
    """Draw the chart into ``path`` (PNG); False when no run has fan-out steps."""
    patterns = [
        (scenario, pattern)
        for scenario, pattern in FANOUT_PATTERNS.items()
        if any(run.steps for run in runs if run.scenario == scenario)
    ]
    if not patterns:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    figure, axes = plt.subplots(
        len(patterns), 2, figsize=(11, 3.8 * len(patterns)), dpi=110, squeeze=False
    )
    for (scenario, pattern), (rates_ax, latency_ax) in zip(patterns, axes, strict=True):
        top = 0.0
        for label, title in titles.items():
            steps = [
                step
                for run in runs
                if run.target == label and run.scenario == scenario
                for step in run.steps
            ]
            rates = sorted({step.rate for step in steps})
            if not rates:
                continue
            delivered = [
                statistics.median(s.delivered for s in steps if s.rate == r) for r in rates
            ]
            p99 = [statistics.median(s.p99_ms or 0.0 for s in steps if s.rate == r) for r in rates]
            rates_ax.plot(rates, delivered, marker="o", markersize=3, label=title)
            latency_ax.plot(rates, p99, marker="o", markersize=3, label=title)
            top = max(top, *rates)
        rates_ax.plot(
            [0, top], [0, top * subscribers], color="grey", linestyle=":", label="offered"
        )
        rates_ax.set(
            title=f"{pattern.title}\ndeliveries/s, {subscribers:,} subscribers",
            xlabel="publish rate (items/s)",
            ylabel="deliveries/s (median of runs)",
        )
        latency_ax.axhline(limit_ms, color="grey", linestyle=":", label=f"{limit_ms:g} ms")
        latency_ax.set(
            title=f"{pattern.title}\np99 publish→receive latency",
            xlabel="publish rate (items/s)",
            ylabel="ms (log scale)",
            yscale="log",
        )
        rates_ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
        latency_ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:g}"))
        latency_ax.yaxis.set_minor_formatter(ticker.StrMethodFormatter("{x:g}"))
        for ax in (rates_ax, latency_ax):
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True
