"""The process-local view of a log: cache, broadcast and subscriptions, fed by a backend."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import islice

from .broadcast import Broadcast
from .cache import ItemCache
from .counters import Counters
from .ids import StreamId
from .item import Item
from .presence import Presence


class Replica:
    """Applies published items to the cache and the broadcast in one step, and serves reads.

    ``floor`` is the lowest id this view can vouch for: a subscriber resuming from an
    older id may have missed items (a restart, or a log that lost its history).
    """

    def __init__(
        self,
        *,
        cache: ItemCache,
        broadcast: Broadcast,
        floor: StreamId,
        replay_batch: int = 512,
    ) -> None:
        self.cache = cache
        self.broadcast = broadcast
        self.floor = floor
        self.replay_batch = replay_batch
        self.last_id: StreamId | None = None
        self._split: tuple[StreamId, StreamId | None] | None = None
        self.counters = Counters()
        self._open = 0
        self.presence = Presence()
        """Who listens to what: open subscriptions by topic name and pattern."""

    @property
    def subscriber_count(self) -> int:
        return self._open

    def apply(self, items: Sequence[Item]) -> None:
        """Cache and broadcast ``items`` (in increasing id order, all after `last_id`)."""
        if not items:
            return
        self.cache.add_all(items)
        self.last_id = items[-1].id
        self.broadcast.publish(items)

    def load(self, items: Sequence[Item]) -> None:
        """Cache ``items`` without broadcasting them (history every subscriber is past)."""
        self.cache.add_all(items)
        if items and (self.last_id is None or items[-1].id > self.last_id):
            self.last_id = items[-1].id

    def start_epoch(self, floor: StreamId, kept: StreamId | None = None) -> None:
        """The log lost history: forget the cache and vouch only for ids from ``floor`` on.

        ``kept`` is the newest id served here that the log still holds (None if none):
        the log lost only what came after it. Every subscription then catches up as if
        overrun: one that had nothing after ``kept`` goes on as it was; any other gets a
        ``reset``, then what the log holds after ``kept`` (after its own position when
        ``kept`` is None).
        """
        self._split = (self.floor, kept)
        self.cache.clear()
        self.broadcast.restart()
        self.floor = floor
        if self.last_id is None or floor > self.last_id:
            self.last_id = floor

    def kept_since(self, floor: StreamId) -> StreamId | None:
        """For a subscription last caught up in the epoch starting at ``floor``: the newest
        id it may have received that the log still holds, if that is known (a single
        epoch began since, and it named one)."""
        if self._split is None or self._split[0] != floor:
            return None
        return self._split[1]

    def served(self) -> list[Item]:
        """Items applied here that a subscriber may have received: the cache's, then the
        live buffer's (each part in id order; the newest last)."""
        return self.cache.after(None) + (self.broadcast.read(self.broadcast.start) or [])

    def attach(self, topics: frozenset[str]) -> None:
        """Count a subscription opened on ``topics`` (names or patterns; empty for all)."""
        self._open += 1
        self.presence.add(topics)

    def snapshot(
        self, after: StreamId | None, topics: Collection[str]
    ) -> tuple[list[Item], StreamId | None, int]:
        """Cached items after ``after``, the cutoff id they run to, and the broadcast cursor
        where live items past the cutoff begin."""
        self.cache.expire()
        return self.cache.after(after, topics), self.last_id, self.broadcast.end

    def window_start(
        self, since: StreamId | None, topics: Collection[str], last: int
    ) -> StreamId | None:
        """Where the newest ``last`` cached items after ``since`` on ``topics`` begin: the id
        of the newest item left out, or ``since`` when none is."""
        self.cache.expire()
        skipped = next(islice(self.cache.newest(since, topics), last, None), None)
        return since if skipped is None else skipped.id

    def items(
        self,
        topics: Collection[str] = (),
        since: StreamId | None = None,
        limit: int | None = None,
    ) -> list[Item]:
        """Cached items after ``since`` in id order (the first ``limit`` of them)."""
        self.cache.expire()
        return self.cache.after(since, topics, limit=limit)

    def get(self, topic: str, key: str) -> Item | None:
        return self.cache.get(topic, key)

    def close(self) -> None:
        """End every open subscription's stream."""
        self.broadcast.close()

    def detach(self, topics: frozenset[str]) -> None:
        """Count a subscription on ``topics`` closed (once per `attach`)."""
        self._open -= 1
        self.presence.remove(topics)
