"""Running totals of what a log's replica did, for metrics read at scrape time.

Plain integers bumped once per batch on the hot paths (never once per delivered item),
so keeping them costs next to nothing; exporting them is the HTTP layer's business.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .events import ResetReason

REPLAY_BOUNDS: tuple[float, ...] = (0, 1, 10, 100, 1_000, 10_000, 100_000)
"""Upper bounds of the buckets of `Counters.replayed` (items replayed per subscriber)."""


@dataclass(slots=True)
class Distribution:
    """A histogram of observed values: bucket ``i`` counts values up to ``bounds[i]`` (and
    above the previous bound); the last bucket, past every bound, counts the rest."""

    bounds: tuple[float, ...]
    counts: list[int]
    sum: float = 0.0

    @classmethod
    def of(cls, bounds: tuple[float, ...]) -> Distribution:
        return cls(bounds, [0] * (len(bounds) + 1))

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def copy(self) -> Distribution:
        return Distribution(self.bounds, list(self.counts), self.sum)


@dataclass(slots=True)
class Counters:
    """Totals since the replica was created.

    ``published``: items this process's backend accepted from its own callers (with a
    shared log, not those other instances published). ``delivered``: live items handed
    to subscribers (replays are in ``replayed``). ``resets`` counts `Reset` events by
    reason; ``catchups`` the times a subscriber overrun by the live buffer caught up from
    the cache; ``replayed`` the items each new subscription replays before going live.
    """

    published: int = 0
    delivered: int = 0
    catchups: int = 0
    resets: dict[ResetReason, int] = field(default_factory=dict)
    replayed: Distribution = field(default_factory=lambda: Distribution.of(REPLAY_BOUNDS))

    def count_reset(self, reason: ResetReason) -> None:
        self.resets[reason] = self.resets.get(reason, 0) + 1

    def copy(self) -> Counters:
        """A snapshot that later bumps leave alone."""
        return Counters(
            self.published, self.delivered, self.catchups, dict(self.resets), self.replayed.copy()
        )
