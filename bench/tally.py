"""What a set of streams received: item counts, integrity anomalies and latencies."""

from __future__ import annotations

from dataclasses import dataclass, field

from .histogram import Histogram


@dataclass(slots=True)
class Tally:
    """Counters shared by the streams of one process; `drain` hands them over and restarts.

    An anomaly of any kind makes a run FAILED, whatever its speed.
    """

    events: int = 0
    gaps: int = 0
    """Items a stream never received: a later sequence number came first."""
    duplicates: int = 0
    """Items received twice, or after a later one."""
    disorder: int = 0
    """Events whose id was not greater than the stream's previous id."""
    resets: int = 0
    """`reset` events: the server said items were lost."""
    errors: int = 0
    """Streams that failed to open or dropped while open."""
    unexpected: int = 0
    """Items whose sequence number was outside what was published."""
    last_ns: int = 0
    """`time.time_ns()` of the last read that carried items."""
    latency: Histogram = field(default_factory=Histogram)

    @property
    def anomalies(self) -> dict[str, int]:
        """The nonzero anomaly counts by kind; empty when the streams were clean."""
        kinds = {
            "gaps": self.gaps,
            "duplicates": self.duplicates,
            "out-of-order ids": self.disorder,
            "resets": self.resets,
            "stream errors": self.errors,
            "unexpected items": self.unexpected,
        }
        return {kind: count for kind, count in kinds.items() if count}

    def merge(self, other: Tally) -> None:
        self.events += other.events
        self.gaps += other.gaps
        self.duplicates += other.duplicates
        self.disorder += other.disorder
        self.resets += other.resets
        self.errors += other.errors
        self.unexpected += other.unexpected
        self.last_ns = max(self.last_ns, other.last_ns)
        self.latency.merge(other.latency)

    def drain(self) -> Tally:
        """A copy of the counters so far; this tally starts again from zero."""
        taken = Tally(
            self.events,
            self.gaps,
            self.duplicates,
            self.disorder,
            self.resets,
            self.errors,
            self.unexpected,
            self.last_ns,
            self.latency,
        )
        self.events = self.gaps = self.duplicates = self.disorder = 0
        self.resets = self.errors = self.unexpected = 0
        self.last_ns = 0
        self.latency = Histogram()
        return taken
