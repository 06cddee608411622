"""The fan-out chart: deliveries/s and p99 latency against the publish rate, per server."""

from __future__ import annotations

import statistics
from pathlib import Path

from .results import RunResult


def fanout_chart(
    runs: list[RunResult], titles: dict[str, str], subscribers: int, limit_ms: float, path: Path
) -> bool:
    """Draw the chart into ``path`` (PNG); False when no run has fan-out steps."""
    if not any(run.steps for run in runs):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    figure, (rates_ax, latency_ax) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    top = 0.0
    for label, title in titles.items():
        steps = [step for run in runs if run.target == label for step in run.steps]
        rates = sorted({step.rate for step in steps})
        if not rates:
            continue
        delivered = [statistics.median(s.delivered for s in steps if s.rate == r) for r in rates]
        p99 = [statistics.median(s.p99_ms or 0.0 for s in steps if s.rate == r) for r in rates]
        rates_ax.plot(rates, delivered, marker="o", markersize=3, label=title)
        latency_ax.plot(rates, p99, marker="o", markersize=3, label=title)
        top = max(top, *rates)
    rates_ax.plot([0, top], [0, top * subscribers], color="grey", linestyle=":", label="offered")
    rates_ax.set(
        title=f"Deliveries/s, {subscribers:,} subscribers",
        xlabel="publish rate (items/s)",
        ylabel="deliveries/s (median of runs)",
    )
    latency_ax.axhline(limit_ms, color="grey", linestyle=":", label=f"{limit_ms:g} ms")
    latency_ax.set(
        title="p99 publish→receive latency",
        xlabel="publish rate (items/s)",
        ylabel="ms (log scale)",
        yscale="log",
    )
    rates_ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    latency_ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:g}"))
    latency_ax.yaxis.set_minor_formatter(ticker.StrMethodFormatter("{x:g}"))
    for axes in (rates_ax, latency_ax):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True
