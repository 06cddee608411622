"""The embedded in-memory log: the default backend, for one process."""

from __future__ import annotations

from collections.abc import Sequence

from ..clock import Clock, wall_clock_ms
from ..config import LogConfig
from ..ids import IdGenerator, StreamId
from ..item import Draft, Item
from .base import Backend


class MemoryBackend(Backend):
    """Ids from the process's clock; history starts when the process does."""

    name = "memory"

    def __init__(self, config: LogConfig | None = None, clock: Clock = wall_clock_ms) -> None:
        floor = StreamId(clock(), 0)
        super().__init__(config or LogConfig(), clock, floor)
        self._ids = IdGenerator(clock, floor)

    async def publish(self, drafts: Sequence[Draft]) -> list[Item]:
        return self.publish_now(drafts)

    def publish_now(self, drafts: Sequence[Draft]) -> list[Item]:
        """Publish without awaiting: ids are consecutive and no reader sees half a batch."""
        self._ensure_open()
        now = self.clock()
        items = self._build(drafts, self._ids.take(len(drafts)), now)
        self.replica.apply(items)
        self.replica.counters.published += len(items)
        return items
