"""Limits of a log: what the cache keeps and how far the live buffer reaches."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Bounds shared by every backend. Times are milliseconds, sizes bytes."""

    max_items: int = 100_000
    max_bytes: int = 256 * 1024 * 1024
    ttl_default_ms: int = 3_600_000
    ttl_max_ms: int = 7 * 24 * 3_600_000
    live_buffer_items: int = 4096
    live_buffer_bytes: int = 16 * 1024 * 1024
    replay_batch: int = 512

    def ttl_ms(self, requested: int | None) -> int:
        """The ttl an item gets: the default when unset, never more than the maximum."""
        return self.ttl_default_ms if requested is None else min(requested, self.ttl_max_ms)
