"""What a bench run does: scenario sizes and durations, full or quick."""

from __future__ import annotations

from dataclasses import dataclass

SCENARIOS = ("fanout", "replay", "idle", "publish")


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes and durations of every scenario; `full` for figures, `quick` for a smoke check."""

    quick: bool
    runs: int
    subscribers: int
    """Subscribers in the fan-out and latency scenarios."""
    latency_rate: float
    """Items/s in the latency scenario (times `subscribers` deliveries/s)."""
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

    @classmethod
    def full(cls) -> Plan:
        return cls(
            quick=False,
            runs=3,
            subscribers=1000,
            latency_rate=50,
            latency_seconds=8,
            ladder=(10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 115, 130, 150, 175, 200, 250,
                    300, 400, 500, 650, 800, 1000, 1300, 1600, 2000),
            step_seconds=3,
            drain_seconds=2,
            p99_limit_ms=50,
            replay_sizes=(10_000, 100_000),
            idle_subscribers=10_000,
            publish_seconds=4,
            batch_size=1000,
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
