"""What every backend provides: a write path of its own, reads from a local `Replica`."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Self

from anyio import AsyncContextManagerMixin

from ..broadcast import Broadcast
from ..cache import ItemCache
from ..clock import Clock
from ..config import LogConfig
from ..counters import Counters
from ..errors import BackendClosed
from ..ids import StreamId
from ..item import Draft, Item
from ..replica import Replica
from ..subscription import Subscription


@dataclass(frozen=True, slots=True)
class Stats:
    """A backend's state at a glance, for health checks and metrics: what the cache holds,
    the open subscriptions, and a snapshot of the replica's running totals."""

    items: int
    bytes: int
    subscribers: int
    counters: Counters


class Backend(AsyncContextManagerMixin, abc.ABC):
    """A log of items. Subclasses implement publishing; reads are served locally."""

    name: str

    def __init__(self, config: LogConfig, clock: Clock, floor: StreamId) -> None:
        self.config = config
        self.clock = clock
        self.replica = Replica(
            cache=ItemCache(max_items=config.max_items, max_bytes=config.max_bytes, clock=clock),
            broadcast=Broadcast(
                max_items=config.live_buffer_items, max_bytes=config.live_buffer_bytes
            ),
            floor=floor,
            replay_batch=config.replay_batch,
        )

    @property
    def healthy(self) -> bool:
        """Whether the backend can take writes now."""
        return True

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Self]:
        """Serve while the block runs (connect, load history, start readers), then close."""
        try:
            yield self
        finally:
            await self.aclose()

    @abc.abstractmethod
    async def publish(self, drafts: Sequence[Draft]) -> list[Item]:
        """Store ``drafts`` atomically with consecutive ids and broadcast them."""

    async def aclose(self) -> None:
        """End every open stream and release resources."""
        self.replica.close()

    async def sync(self, since: StreamId | None = None) -> None:
        """Before a read: wait (briefly) until this replica holds what the reader may know
        of: every write this instance acknowledged, and ``since`` (an id that may come from
        another instance of a shared log). Nothing to do where publishing applies at once."""

    def subscribe(
        self,
        topics: Collection[str] = (),
        since: StreamId | None = None,
        limit: int | None = None,
        *,
        last: int | None = None,
    ) -> Subscription:
        """Register for live items and take the replay snapshot, in one step (no await)."""
        return Subscription(self.replica, frozenset(topics), since, limit, last=last)

    def items(
        self,
        topics: Collection[str] = (),
        since: StreamId | None = None,
        limit: int | None = None,
    ) -> list[Item]:
        return self.replica.items(topics, since, limit)

    def get(self, topic: str, key: str) -> Item | None:
        return self.replica.get(topic, key)

    def stats(self) -> Stats:
        replica = self.replica
        cache = replica.cache
        cache.expire()
        return Stats(len(cache), cache.bytes, replica.subscriber_count, replica.counters.copy())

    def _ensure_open(self) -> None:
        if self.replica.broadcast.closed:
            raise BackendClosed("the log is closed")

    def _build(self, drafts: Sequence[Draft], ids: Sequence[StreamId], now: int) -> list[Item]:
        ttl_ms = self.config.ttl_ms
        return Item.create_all(ids, drafts, [ttl_ms(draft.ttl_ms) for draft in drafts], now)
