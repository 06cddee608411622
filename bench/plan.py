"""What a bench run does: the servers' labels, the producer patterns the fan-out is
measured with, and scenario sizes and durations, full or quick."""

from __future__ import annotations

from dataclasses import dataclass

MEMORY = "tailcast"
REDIS = "tailcast-redis"
REDIS_WORKERS = "tailcast-redis-w2"
"""The Redis backend with ``--workers 2`` (publish scenario only)."""
NCHAN = "nchan"
BARE = "bare"
"""The bare uvicorn app (`bench.bare`): the ceiling for single-item POSTs."""
BARE_WORKERS = "bare-w2"
"""The bare app with ``--workers 2`` (publish scenario only): the ceiling for `REDIS_WORKERS`
on the same machine."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """How the fan-out's items are published: every fan-out figure names its pattern."""

    title: str
    producers: int
    """Producers publishing concurrently, each on a keep-alive connection of its own."""
    pipelined: bool
    """Open loop: requests go out on schedule without waiting for responses (one producer).
    Otherwise each producer sends one item and waits for its response before the next."""


SEQUENTIAL_1 = Pattern("1 sequential producer", 1, pipelined=False)
SEQUENTIAL_4 = Pattern("4 concurrent sequential producers", 4, pipelined=False)
PIPELINED = Pattern("1 pipelined producer (open loop)", 1, pipelined=True)

FANOUT_PATTERNS: dict[str, Pattern] = {
    "fanout-seq1": SEQUENTIAL_1,
    "fanout-seq4": SEQUENTIAL_4,
    "fanout-pipelined": PIPELINED,
}
"""The fan-out scenarios, by name: one per producer pattern."""

LATENCY_SCENARIO = "fanout-seq1"
"""The fan-out scenario that first runs the fixed-rate latency step."""

SCENARIOS = (*FANOUT_PATTERNS, "replay", "idle", "publish")
GROUPS = {"fanout": tuple(FANOUT_PATTERNS)}
"""Names that stand for several scenarios on the command line."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes and durations of every scenario; `full` for figures, `quick` for a smoke check."""

    quick: bool
    runs: int
    subscribers: int
    """Subscribers in the fan-out and latency scenarios."""
    latency_rate: float
    """Items/s in the latency step (times `subscribers` deliveries/s)."""
    latency_seconds: float
    ladder: tuple[float, ...]
    """Publish rates (items/s) of the fan-out steps, climbed until one fails."""
    step_seconds: float
    drain_seconds: float
    """How long after a step's last publish every stream must have received it."""
    p99_limit_ms: float
    replay_sizes: tuple[int, ...]
    idle_subscribers: int
    publish_seconds: float
    batch_size: int
    scenarios: tuple[str, ...] = SCENARIOS
    once: tuple[str, ...] = ()
    """Scenarios run once whatever `runs` says: figures that vary little, or that no
    target depends on, where three runs would cost more time than they tell."""

    def runs_of(self, scenario: str) -> int:
        return 1 if scenario in self.once else self.runs

    @classmethod
    def full(cls) -> Plan:
        return cls(
            quick=False,
            runs=3,
            subscribers=1000,
            latency_rate=50,
            latency_seconds=8,
            ladder=(20, 30, 40, 50, 60, 70, 80, 90, 100, 115, 130, 150, 175, 200, 250, 300,
                    400, 500, 650, 800, 1000, 1300, 1600, 2000),
            step_seconds=3,
            drain_seconds=2,
            p99_limit_ms=50,
            replay_sizes=(10_000, 100_000),
            idle_subscribers=10_000,
            publish_seconds=4,
            batch_size=1000,
            once=("fanout-pipelined", "idle"),
        )  # fmt: skip

    @classmethod
    def quick_check(cls) -> Plan:
        return cls(
            quick=True,
            runs=1,
            subscribers=1000,
            latency_rate=50,
            latency_seconds=2,
            ladder=(20, 50, 100, 200, 400, 800, 1600),
            step_seconds=1.5,
            drain_seconds=1,
            p99_limit_ms=50,
            replay_sizes=(10_000, 100_000),
            idle_subscribers=2000,
            publish_seconds=1.5,
            batch_size=1000,
        )
