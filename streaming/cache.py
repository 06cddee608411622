"""The item cache: latest item per (topic, key), bounded by ttl, count and bytes; an item
published without a key is kept on its own (`Item.identity`).

cachetools' `TLRUCache` does expiry (per-item ttl) and size-driven eviction; since the
cache is never read through ``[]``/``get`` (which would reorder it), its LRU order is
write order, so a full cache evicts the oldest items first. Indexes by id, global and
per topic, serve "everything after id X" in O(log n + k) (`_IdIndex`). Items that leave
by expiry or eviction are recorded as losses, so a subscriber that needed one can be told.

The topics a read asks for may include patterns (`streaming.patterns`): a read expands
them to the cached topics they match, a scan of the topic names (not of the items).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby, islice
from operator import attrgetter, lt
from typing import Any, Literal

from cachetools import Cache, TLRUCache

from .clock import Clock
from .errors import InvalidId
from .ids import StreamId
from .item import Identity, Item
from .patterns import has_patterns, topic_filter

LossReason = Literal["expired", "evicted"]
_Key = Identity
_MERGE_MOST = 64
"""Most topics a page of a pattern read merges; past that it walks the items instead."""
_by_id = attrgetter("id")
_id_of = _by_id
_topic_of = attrgetter("topic")
_size_of = attrgetter("size")


@dataclass(frozen=True, slots=True)
class TopicStats:
    """What the cache holds of one topic: items, their encoded bytes, and the newest id."""

    items: int
    bytes: int
    newest: StreamId | None


@dataclass(frozen=True, slots=True)
class Loss:
    """The newest item that left the cache for a reason other than being replaced."""

    id: StreamId
    reason: LossReason


class ItemCache:
    """Latest-per-key TTL cache with id-ordered range reads and loss tracking."""

    def __init__(
        self,
        *,
        max_items: int,
        max_bytes: int,
        clock: Clock,
        max_loss_topics: int = 100_000,
    ) -> None:
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._clock = clock
        self._store = _ExpiringStore(max_bytes, clock, self._lose)
        self._latest: dict[_Key, Item] = {}  # the store's items, read without its timer
        self._by_id = _IdIndex()
        self._by_topic: dict[str, _IdIndex] = {}
        self._topic_bytes: dict[str, int] = {}  # encoded bytes cached per topic
        self._losses = _LossLog(max_loss_topics)
        self.topics_version = 0
        """Bumped whenever a topic appears in or leaves the cache (`topics`)."""
        self._expansions: dict[frozenset[str], list[str]] = {}
        self._expansions_version = 0

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def bytes(self) -> int:
        """Total encoded size of the cached items."""
        return int(self._store.currsize)

    def add(self, item: Item) -> None:
        """Store ``item``, replacing an older item of the same identity without a loss."""
        self.add_all((item,))

    def add_all(self, items: Iterable[Item]) -> None:
        """Store ``items`` in order, each as `add` would: one clock reading and one expiry
        pass for them all, and the indexes updated once (a batch is stored at one instant)."""
        store, latest = self._store, self._latest
        max_bytes, max_items = self._max_bytes, self._max_items
        stored: list[tuple[_Key, Item]] = []
        replaced: list[Item] = []
        # One clock reading for the whole update: a clock crossing into a new millisecond
        # mid-way could otherwise expire an item between two steps (its index then drifts).
        with store.timer as now:
            store.expire(now)
            for item in items:
                key = (item.topic, item.key if item.keyed else item.id)
                # `latest` holds exactly what the store does, and nothing in it has expired
                # at `now`: it finds the item replaced without asking the store.
                old = latest.pop(key, None)
                if old is not None:
                    replaced.append(old)
                if item.size > max_bytes or not now < item.expires_at:
                    # Too big, or expired on arrival (a slow replica loading old entries):
                    # it replaces the old item and evicts nothing.
                    if old is not None:
                        del store[key]
                    reason: LossReason = "evicted" if item.size > max_bytes else "expired"
                    self._losses.record(item.topic, Loss(item.id, reason))
                    continue
                if old is None:
                    while len(latest) >= max_items:
                        store.popitem()
                # A replacement is set over the old item: the store frees its bytes (and
                # may evict it first to make room; `_lose` then ignores it, as replaced).
                store[key] = item
                latest[key] = item
                stored.append((key, item))
        # No await since the first step: readers never see the indexes behind the store.
        # In: what the batch stored and still holds (a later item of it may have replaced
        # or evicted an earlier one). Out: what it replaced (of it too, never indexed).
        self._index_all([item for key, item in stored if latest.get(key) is item])
        self._unindex_all(replaced)

    def clear(self) -> None:
        """Forget every item (the log they came from is gone); not recorded as losses."""
        self._store = _ExpiringStore(self._max_bytes, self._clock, self._lose)
        self._latest = {}
        self._by_id = _IdIndex()
        self._by_topic = {}
        self._topic_bytes = {}
        self.topics_version += 1

    def topics(self) -> Collection[str]:
        """The topics of the cached items (a live view: copy it before an await)."""
        return self._by_topic.keys()

    def topic_stats(self, topic: str) -> TopicStats:
        """What the cache holds of ``topic`` (nothing: zeros and None)."""
        index = self._by_topic.get(topic)
        if index is None:
            return TopicStats(0, 0, None)
        return TopicStats(len(index), self._topic_bytes[topic], index.last())

    def expire(self) -> None:
        """Drop expired items now; reads call this so they never see a stale item."""
        self._store.expire()

    def get(self, topic: str, key: str) -> Item | None:
        """The live item with ``key`` in ``topic``, without touching the eviction order: the
        keyed one, else the one published without a key whose id is ``key``."""
        item = self._store.peek((topic, key))
        if item is None and (id := _as_id(key)) is not None:
            item = self._store.peek((topic, id))
        return item

    def after(
        self,
        since: StreamId | None,
        topics: Collection[str] = (),
        *,
        limit: int | None = None,
    ) -> list[Item]:
        """Cached items after ``since`` on ``topics`` (all when empty; names or patterns),
        in id order."""
        if not topics:
            return self._by_id.after(since, limit)
        chosen = topics if isinstance(topics, frozenset) else frozenset(topics)
        if has_patterns(chosen):
            topics = self._expand(chosen)
            if limit is not None and len(topics) > _MERGE_MOST:
                # A page of a pattern matching many topics: merging them all would cost
                # every topic a bisection; walk the items in id order instead.
                return self._walk(since, chosen, limit)
        by_topic = self._by_topic
        parts = [by_topic[t].after(since, limit) for t in topics if t in by_topic]
        if len(parts) == 1:
            return parts[0]
        return list(islice(heapq.merge(*parts, key=_by_id), limit))

    def newest(self, since: StreamId | None, topics: Collection[str] = ()) -> Iterator[Item]:
        """Cached items after ``since`` on ``topics`` (all when empty; names or patterns),
        newest first; read it before the cache changes (no await in between)."""
        if not topics:
            return self._by_id.newest(since)
        topics = self._expand(topics)
        by_topic = self._by_topic
        parts = [by_topic[t].newest(since) for t in topics if t in by_topic]
        if len(parts) == 1:
            return parts[0]
        return heapq.merge(*parts, key=_by_id, reverse=True)

    def oldest(self, topics: Collection[str] = ()) -> StreamId | None:
        """The oldest cached id on ``topics`` (all when empty), or None when there is none."""
        if not topics:
            return self._by_id.first()
        topics = self._expand(topics)
        firsts = [self._by_topic[t].first() for t in topics if t in self._by_topic]
        return min((first for first in firsts if first is not None), default=None)

    def loss_after(self, since: StreamId, topics: Collection[str] = ()) -> Loss | None:
        """The newest loss on ``topics`` (all when empty) with an id after ``since``, if any."""
        return self._losses.after(since, topics)

    def _expand(self, topics: Collection[str]) -> Collection[str]:
        """``topics`` with every pattern among them replaced by the cached topics it matches.

        A scan of the topic names, kept until a topic comes or goes (pages of one listing
        ask again and again).
        """
        chosen = topics if isinstance(topics, frozenset) else frozenset(topics)
        if not has_patterns(chosen):
            return topics
        if self._expansions_version != self.topics_version or len(self._expansions) > 64:
            self._expansions = {}
            self._expansions_version = self.topics_version
        expanded = self._expansions.get(chosen)
        if expanded is None:
            matches = topic_filter(chosen).matches
            expanded = self._expansions[chosen] = [t for t in self._by_topic if matches(t)]
        return expanded

    def _walk(self, since: StreamId | None, chosen: frozenset[str], limit: int) -> list[Item]:
        """The first ``limit`` items after ``since`` on the chosen topics, found by walking
        every cached item in id order."""
        matches = topic_filter(chosen).matches
        return list(islice((i for i in self._by_id.walk(since) if matches(i.topic)), limit))

    def _index_all(self, items: list[Item]) -> None:
        """Index ``items``, stored in this order (increasing ids, unless history loads late)."""
        if not items:
            return
        self._by_id.add_all(items)
        by_topic, topic_bytes = self._by_topic, self._topic_bytes
        for topic, group in groupby(items, _topic_of):
            chosen = list(group)
            index = by_topic.get(topic)
            if index is None:
                index = by_topic[topic] = _IdIndex()
                topic_bytes[topic] = 0
                self.topics_version += 1
            index.add_all(chosen)
            topic_bytes[topic] += sum(map(_size_of, chosen))

    def _unindex_all(self, items: list[Item]) -> None:
        """Unindex those of ``items`` that are indexed."""
        if not items:
            return
        by_topic, topic_bytes = self._by_topic, self._topic_bytes
        for topic, group in groupby(self._by_id.remove_all(items), _topic_of):
            chosen = list(group)
            index = by_topic[topic]
            index.remove_all(chosen)
            if index:
                topic_bytes[topic] -= sum(map(_size_of, chosen))
            else:
                del by_topic[topic], topic_bytes[topic]
                self.topics_version += 1

    def _lose(self, item: Item, reason: LossReason) -> None:
        key = (item.topic, item.key if item.keyed else item.id)
        if self._latest.get(key) is not item:
            return  # being replaced (`add_all`): not a loss
        del self._latest[key]
        self._unindex_all([item])  # not indexed yet if its own batch evicts it
        self._losses.record(item.topic, Loss(item.id, reason))


class _IdIndex:
    """Items by id, read in id order from any id.

    Ids arrive in increasing order, so the sorted list of ids only grows at its end, and a
    removed id stays in it as a hole (absent from the dict) until holes are half the list:
    adding and removing are O(1) amortised, a read is a bisection and a walk past holes.
    """

    __slots__ = ("_head", "_holes", "_ids", "_items")

    def __init__(self) -> None:
        self._ids: list[StreamId] = []
        self._items: dict[StreamId, Item] = {}
        self._holes = 0
        self._head = 0  # every entry before it is a hole (expiry removes the oldest first)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Item) -> None:
        ids = self._ids
        if not ids or item.id > ids[-1]:
            ids.append(item.id)
        else:  # an older id (history loaded late), or one removed before: keep order
            at = bisect_left(ids, item.id)
            if at < len(ids) and ids[at] == item.id:
                if item.id not in self._items:
                    self._holes -= 1
            else:
                ids.insert(at, item.id)
            self._head = min(self._head, at)
        self._items[item.id] = item

    def add_all(self, items: list[Item]) -> None:
        """`add` each of ``items``; at once when their ids increase from past the last."""
        added = list(map(_id_of, items))
        ids = self._ids
        if (not ids or added[0] > ids[-1]) and all(map(lt, added, islice(added, 1, None))):
            ids += added
            self._items.update(zip(added, items, strict=True))
            return
        for item in items:
            self.add(item)

    def remove_all(self, items: list[Item]) -> list[Item]:
        """Remove those of ``items`` that are held; returns them."""
        held = self._items
        removed = [item for item in items if held.pop(item.id, None) is not None]
        self._holes += len(removed)
        if self._holes > 64 and 2 * self._holes > len(self._ids):
            self._ids = [i for i in self._ids if i in held]
            self._holes = self._head = 0
        return removed

    def first(self) -> StreamId | None:
        ids, items, head = self._ids, self._items, self._head
        while head < len(ids) and ids[head] not in items:
            head += 1
        self._head = head
        return ids[head] if head < len(ids) else None

    def _start(self, since: StreamId | None) -> int:
        """Where the ids after ``since`` (all when None) begin in the id list."""
        return self._head if since is None else max(self._head, bisect_right(self._ids, since))

    def newest(self, since: StreamId | None) -> Iterator[Item]:
        """Items with ids after ``since`` (all when None), newest first."""
        ids, items = self._ids, self._items
        stop = self._start(since)
        for at in range(len(ids) - 1, stop - 1, -1):
            item = items.get(ids[at])
            if item is not None:
                yield item

    def last(self) -> StreamId | None:
        """The newest id held (trailing holes are rare: a walk back past them)."""
        ids, items = self._ids, self._items
        at = len(ids) - 1
        while at >= self._head and ids[at] not in items:
            at -= 1
        return ids[at] if at >= self._head and items else None

    def walk(self, since: StreamId | None) -> Iterator[Item]:
        """Items with ids after ``since``, in id order, lazily (read them with no await)."""
        ids, items = self._ids, self._items
        start = self._start(since)
        for at in range(start, len(ids)):
            item = items.get(ids[at])
            if item is not None:
                yield item

    def after(self, since: StreamId | None, limit: int | None) -> list[Item]:
        """Items with ids after ``since`` (all when None), in id order, at most ``limit``."""
        ids, items = self._ids, self._items
        start = self._start(since)
        if not self._holes:
            stop = len(ids) if limit is None else min(len(ids), start + limit)
            return [items[i] for i in ids[start:stop]]
        if limit is None:
            return [items[i] for i in ids[start:] if i in items]
        # A page: copy only a window of ids past the start, not the whole rest of the list.
        found: list[Item] = []
        while start < len(ids) and len(found) < limit:
            window = ids[start : start + 2 * (limit - len(found))]
            found += [items[i] for i in window if i in items]
            start += len(window)
        return found[:limit]


def _as_id(key: str) -> StreamId | None:
    """The id ``key`` spells, as an item without a key shows it, or None."""
    try:
        id = StreamId.parse(key)
    except InvalidId:
        return None
    return id if str(id) == key else None


def _expires_at(_key: _Key, item: Item, _now: float) -> float:
    return item.expires_at


class _ExpiringStore(TLRUCache[_Key, Item]):
    """A TLRUCache that reports every item it drops by expiry or eviction."""

    def __init__(
        self, max_bytes: int, clock: Clock, on_lost: Callable[[Item, LossReason], None]
    ) -> None:
        super().__init__(max_bytes, _expires_at, timer=clock, getsizeof=_size_of)
        self._on_lost = on_lost
        self._swept_at: Any = None  # the time of the last expiry pass

    def expire(self, time: Any = None) -> list[tuple[_Key, Item]]:
        if time is None:
            time = self.timer()
        if time == self._swept_at:
            # Nothing expired since the pass at this very time: whatever was stored since
            # expires later (`ItemCache.add_all` stores no item expired on arrival). Spares
            # the pass TLRUCache makes for every item set or evicted, a batch's thousand.
            return []
        self._swept_at = time
        expired: list[tuple[_Key, Item]] = super().expire(time)
        for _key, item in expired:
            self._on_lost(item, "expired")
        return expired

    def popitem(self) -> tuple[_Key, Item]:
        key, item = super().popitem()
        self._on_lost(item, "evicted")
        return key, item

    def peek(self, key: _Key) -> Item | None:
        """Read without moving the key in the LRU order (``in`` checks expiry, not order)."""
        if key in self:
            item: Item = Cache.__getitem__(self, key)
            return item
        return None


class _LossLog:
    """Newest loss per topic, for a bounded number of topics.

    Topics beyond the bound fold into one shared watermark that applies to every untracked
    topic: a subscriber may then get a needless ``reset``, never a missing one. The topic
    folded is the one whose last loss is oldest; recording is O(1) at any number of topics.
    """

    def __init__(self, max_topics: int) -> None:
        self._max_topics = max_topics
        # In the order of their last loss. An OrderedDict, not a dict: taking the first key
        # of a dict whose front keeps being deleted scans the holes left there, O(n) each.
        self._by_topic: OrderedDict[str, Loss] = OrderedDict()
        self._newest: Loss | None = None
        self._folded: Loss | None = None

    def record(self, topic: str, loss: Loss) -> None:
        by_topic = self._by_topic
        current = by_topic.get(topic)
        if current is not None:
            by_topic[topic] = _newer(current, loss)
            by_topic.move_to_end(topic)
        else:
            # A topic folded out earlier is still covered by the folded watermark.
            by_topic[topic] = _newer(self._folded, loss)
            if len(by_topic) > self._max_topics:
                _topic, dropped = by_topic.popitem(last=False)
                self._folded = _newer(self._folded, dropped)
        self._newest = _newer(self._newest, loss)

    def after(self, since: StreamId, topics: Collection[str]) -> Loss | None:
        chosen = frozenset(topics)
        if not topics:
            candidates: Iterable[Loss | None] = (self._newest,)
        elif has_patterns(chosen):
            # Any topic folded out may match a pattern: the folded watermark counts too.
            matches = topic_filter(chosen).matches
            found = [loss for topic, loss in self._by_topic.items() if matches(topic)]
            candidates = (*found, self._folded)
        else:
            candidates = (self._by_topic.get(t, self._folded) for t in topics)
        newest: Loss | None = None
        for loss in candidates:
            if loss is not None and loss.id > since:
                newest = _newer(newest, loss)
        return newest


def _newer(a: Loss | None, b: Loss) -> Loss:
    return b if a is None or b.id > a.id else a
