"""A fixed-bucket latency histogram, cheap to fill in a hot loop and to merge across processes."""

from __future__ import annotations

from dataclasses import dataclass, field

BUCKET_NS = 100_000
"""Bucket width: 0.1 ms."""
BUCKETS = 50_000
"""Buckets up to 5 s; the last one also holds everything slower."""


def _zeros() -> list[int]:
    return [0] * BUCKETS


@dataclass(slots=True)
class Histogram:
    """Counts of latencies in 0.1 ms buckets.

    Hot loops index ``counts`` directly (``counts[min(ns // BUCKET_NS, BUCKETS - 1)] += 1``)
    rather than calling a method per sample.
    """

    counts: list[int] = field(default_factory=_zeros)

    def add_ns(self, ns: int) -> None:
        self.counts[max(0, min(ns // BUCKET_NS, BUCKETS - 1))] += 1

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile_ms(self, fraction: float) -> float | None:
        """The latency below which ``fraction`` of samples fall (bucket upper edge), or None."""
        total = self.total
        if total == 0:
            return None
        wanted = max(1, round(fraction * total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= wanted:
                return (index + 1) * BUCKET_NS / 1e6
        raise AssertionError("unreachable: counts add up to total")
