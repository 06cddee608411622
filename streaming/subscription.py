"""A subscription: cached items up to a cutoff in id order, then live items past it.

The cutoff and the live cursor are taken in the same step as the snapshot, with no
await in between, so an item published meanwhile is either in the snapshot or in the
live log, never both and never neither. A subscriber that falls behind the live log
catches up from the cache after the last id it has accounted for, with a `Reset` first
when items it needed have left the cache.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .events import Live, Reset, ResetReason
from .ids import StreamId
from .item import Item
from .patterns import has_patterns, topic_filter
from .replica import Replica

if TYPE_CHECKING:
    from .broadcast import Broadcast

_ORIGIN = StreamId(0, 0)

Event = Item | Reset | Live
"""What a subscription delivers: items, and the control events around them."""

logger = logging.getLogger("tailcast.subscription")


class Subscription:
    """One subscriber's stream: registered for live items and holding its replay snapshot
    from the moment it is made (no await in between); close it when done."""

    def __init__(
        self,
        replica: Replica,
        topics: frozenset[str],
        since: StreamId | None,
        limit: int | None,
        *,
        last: int | None = None,
    ) -> None:
        self._replica = replica
        self._topics = topics
        # With patterns among the topics, live items are matched (cached per topic).
        self._matches = topic_filter(topics).matches if has_patterns(topics) else None
        self._remaining = limit
        self._last_sent = since
        self._closed = False
        # With ``last``, the replay starts after the newest item it leaves out on purpose.
        start = since if last is None else replica.window_start(since, topics, last)
        # Snapshot (which expires the cache) before looking for losses: an item expiring in
        # between is then either in the snapshot or announced by the reset, never neither.
        items, cutoff, self._cursor = replica.snapshot(start, topics)
        reset = self._check_since(since, start)
        if reset is not None and reset.reason == "unknown_id":
            # An id we never issued: replay all (the newest ``last`` of all).
            start = None if last is None else replica.window_start(None, topics, last)
            items = replica.cache.after(start, topics)
        # Everything on our topics up to here is accounted for (sent, or announced lost).
        self._position = cutoff or _ORIGIN
        self._floor = replica.floor
        self._pending: list[Event] = [reset] if reset is not None else []
        self._pending += items
        self._pending.append(Live(cutoff, len(items)))
        self._pending_at = 0
        counters = replica.counters
        counters.replayed.observe(len(items))
        if reset is not None:
            counters.count_reset(reset.reason)
        replica.attach(topics)

    @property
    def topics(self) -> frozenset[str]:
        return self._topics

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def exhausted(self) -> bool:
        """Whether the limit is used up: the next `poll` ends the stream."""
        return self._remaining == 0

    def poll(self, shared: SharedBatches | None = None) -> Sequence[Event] | None:
        """Events ready now, without waiting: ``[]`` if none yet, None once the stream ended.

        With ``shared`` (one per fan-out round), subscribers at the same place on the same
        topics get the same list of live items, read and filtered once.
        """
        if self._closed:
            return None
        broadcast = self._replica.broadcast
        if broadcast.closed or self._remaining == 0:
            self.close()
            return None
        if self._pending_at < len(self._pending):
            return self._limited(self._take_pending())
        end = broadcast.end
        if self._cursor == end:
            return []
        if shared is None:
            live = _live_after(broadcast, self._cursor, self._topics, self._matches)
        else:
            live = shared.live_after(broadcast, self._cursor, self._topics, self._matches)
        if live is None:
            self._catch_up()
            return self._limited(self._take_pending())
        self._cursor = end
        self._position = live.last_id
        if self._remaining is None:  # no limit: the shared batch as it is
            delivered: Sequence[Event] = live.items
            if live.last_item_id is not None:
                self._last_sent = live.last_item_id
        else:
            delivered = self._limited(live.items)
        self._replica.counters.delivered += len(delivered)
        return delivered

    async def next_batch(self) -> Sequence[Event] | None:
        """The next non-empty batch of events, waiting for live items; None when ended."""
        while True:
            batch = self.poll()
            if batch is None or batch:
                return batch
            await self._replica.broadcast.wait(self._cursor)

    async def wait(self) -> None:
        """Wait for the next wake-up of the live log: new items, its close, or a nudge."""
        await self._replica.broadcast.wake_up(self._cursor)

    def close(self) -> None:
        """Release the subscription; idempotent."""
        if not self._closed:
            self._closed = True
            self._pending = []
            self._replica.detach(self._topics)

    def __aiter__(self) -> AsyncIterator[Sequence[Event]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Sequence[Event]]:
        try:
            while (batch := await self.next_batch()) is not None:
                yield batch
        finally:
            self.close()

    def _check_since(self, since: StreamId | None, start: StreamId | None) -> Reset | None:
        """The reset owed to a stream resuming after ``since`` whose replay begins after
        ``start``: items up to ``start`` were left out on purpose (``last``), so only a loss
        after it counts."""
        if since is None or since == _ORIGIN:  # 0-0: from the start, nothing to miss
            return None
        assert start is not None
        replica = self._replica
        oldest = replica.cache.oldest(self._topics)
        if start < replica.floor:  # a cached id left out is never older than the floor
            return Reset("restarted", since, oldest)
        if replica.last_id is None or since > replica.last_id:
            return Reset("unknown_id", since, oldest)
        loss = replica.cache.loss_after(start, self._topics)
        return None if loss is None else Reset(loss.reason, since, oldest)

    def _catch_up(self) -> None:
        """Rejoin after being overrun: replay the cache after our position, then go live."""
        replica = self._replica
        start, lost = self._position, False
        if self._floor < replica.floor and self._position < replica.floor:
            # The log lost history (a new epoch began) somewhere past our position.
            kept = replica.kept_since(self._floor)
            if kept is None or kept < self._position:
                # We may have sent items the log lost: after the reset, go on from the last
                # one it kept (what it holds after that, we never sent).
                lost = True
                if kept is not None:
                    start = kept
        items, cutoff, self._cursor = replica.snapshot(start, self._topics)
        loss = replica.cache.loss_after(start, self._topics)
        reason: ResetReason | None = "restarted" if lost else None if loss is None else loss.reason
        self._floor = replica.floor
        if reason is not None or items:
            # Not counted otherwise: nothing on our topics passed while we were overrun (a
            # stream the fan-out had no reason to visit while other topics were busy).
            replica.counters.catchups += 1
        pending: list[Event] = []
        if reason is not None:
            replica.counters.count_reset(reason)
            oldest = replica.cache.oldest(self._topics)
            pending.append(Reset(reason, self._last_sent, oldest))
            if lost:
                logger.info("the log lost items a subscriber had: reset after %s", self._last_sent)
            else:
                logger.info(
                    "slow subscriber overrun; items it needed were %s: reset after %s",
                    reason,
                    self._last_sent,
                )
        else:
            logger.debug("slow subscriber overrun; catching up %d items from cache", len(items))
        pending += items
        self._pending, self._pending_at = pending, 0
        self._position = cutoff or _ORIGIN

    def _take_pending(self) -> list[Event]:
        start = self._pending_at
        self._pending_at = min(len(self._pending), start + self._replica.replay_batch)
        batch = self._pending[start : self._pending_at]
        if self._pending_at == len(self._pending):
            self._pending, self._pending_at = [], 0
        return batch

    def _limited(self, batch: Sequence[Event]) -> Sequence[Event]:
        """Count items against the limit, cutting the batch where it runs out."""
        if self._remaining is None:
            self._note_sent(batch)
            return batch
        kept: list[Event] = []
        for event in batch:
            if isinstance(event, Item):
                if self._remaining == 0:
                    break
                self._remaining -= 1
            kept.append(event)
        self._note_sent(kept)
        return kept

    def _note_sent(self, batch: Sequence[Event]) -> None:
        for event in reversed(batch):
            if isinstance(event, Item):
                self._last_sent = event.id
                return


@dataclass(frozen=True, slots=True)
class _Live:
    """Live items from a cursor to the log's end: those on the topics, and the last id read."""

    items: list[Item]
    last_id: StreamId
    last_item_id: StreamId | None
    """The id of the last of ``items``, if any: derived once for every subscriber."""


def _live_after(
    broadcast: Broadcast,
    cursor: int,
    topics: frozenset[str],
    matches: Callable[[str], bool] | None = None,
) -> _Live | None:
    """The log from ``cursor`` (not empty) filtered to ``topics`` (by ``matches`` when
    they hold patterns); None if overrun."""
    live = broadcast.read(cursor)
    if live is None:
        return None
    last_id = live[-1].id
    if topics:
        if matches is not None:
            live = [item for item in live if matches(item.topic)]
        else:
            live = [item for item in live if item.topic in topics]
    return _Live(live, last_id, live[-1].id if live else None)


class SharedBatches:
    """Live batches for one fan-out round, read once per (cursor, topics).

    Valid while the log does not change: make one per round, with no await in between.
    Subscribers that share a batch get the same list object, so whatever is built from
    it (an encoded chunk) can be built once as well.
    """

    __slots__ = ("_batches",)

    def __init__(self) -> None:
        self._batches: dict[tuple[int, frozenset[str]], _Live | None] = {}

    def live_after(
        self,
        broadcast: Broadcast,
        cursor: int,
        topics: frozenset[str],
        matches: Callable[[str], bool] | None = None,
    ) -> _Live | None:
        key = (cursor, topics)
        try:
            return self._batches[key]
        except KeyError:
            live = self._batches[key] = _live_after(broadcast, cursor, topics, matches)
            return live
