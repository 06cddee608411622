"""Subscriptions checked against a reference model, over random interleavings of operations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import hypothesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from streaming import (
    Draft,
    Event,
    Item,
    Live,
    LogConfig,
    MemoryBackend,
    Reset,
    ResetReason,
    StreamId,
)
from streaming.cache import LossReason
from streaming.subscription import Subscription
from tests.core.helpers import T0, FakeClock, describe, drain

ORIGIN = StreamId(0, 0)
LIVE_BUFFER = 2
CONFIG = LogConfig(
    max_items=8,
    max_bytes=2_000,
    ttl_default_ms=60,
    ttl_max_ms=1_000,
    live_buffer_items=LIVE_BUFFER,
    replay_batch=3,
)
TOPICS = ("a", "b")
SUBSCRIBER_TOPICS: tuple[tuple[str, ...], ...] = ((), ("a",), ("a", "b"))
MAX_SUBSCRIBERS = 6

# Frames are ~140 bytes plus the data: 400 bytes of data leaves room for three such items,
# and 2_100 never fits in the cache at all.
drafts = st.builds(
    Draft,
    data=st.sampled_from([0, 0, 0, 10, 10, 400, 400, 2_100]).map(lambda n: "x" * n),
    key=st.sampled_from(["k1", "k2", None]),
    topic=st.sampled_from(TOPICS),
    ttl_ms=st.sampled_from([None, None, None, 0, 1, 5, 20]),
)


def on_topics(item: Item, topics: frozenset[str]) -> bool:
    return not topics or item.topic in topics


@dataclass(frozen=True)
class Lost:
    item: Item
    reason: LossReason


class ModelLog:
    """The log as the test understands it, computed without the code under test."""

    def __init__(self, clock: FakeClock, floor: StreamId) -> None:
        self.clock = clock
        self.floor = floor
        self.published: list[Item] = []  # everything, in id order: the broadcast sequence
        self.buffer_start = 0  # index in `published` of the oldest item the live buffer holds
        self.cache: dict[tuple[str, str], Item] = {}  # insertion order is eviction order
        self.losses: list[Lost] = []
        self.newest_by_key: dict[tuple[str, str], StreamId] = {}

    @property
    def last_id(self) -> StreamId | None:
        return self.published[-1].id if self.published else None

    def publish(self, items: Sequence[Item]) -> None:
        for item in items:
            self._add(item)
            self.newest_by_key[(item.topic, item.key)] = item.id
        self.published.extend(items)
        if len(self.published) - self.buffer_start > 2 * LIVE_BUFFER:
            self.buffer_start = len(self.published) - LIVE_BUFFER

    def expire(self) -> None:
        now = self.clock.now
        for key, item in list(self.cache.items()):
            if item.expires_at <= now:
                del self.cache[key]
                hypothesis.event("model: expired")
                self.losses.append(Lost(item, "expired"))

    def cached(self, topics: frozenset[str], after: StreamId | None) -> list[Item]:
        self.expire()
        start = ORIGIN if after is None else after
        found = [i for i in self.cache.values() if on_topics(i, topics) and i.id > start]
        return sorted(found, key=lambda item: item.id)

    def oldest(self, topics: frozenset[str]) -> StreamId | None:
        found = self.cached(topics, None)
        return found[0].id if found else None

    def losses_after(self, position: StreamId, topics: frozenset[str]) -> list[Lost]:
        self.expire()
        return [x for x in self.losses if on_topics(x.item, topics) and x.item.id > position]

    def superseded(self, item: Item) -> bool:
        return self.newest_by_key[(item.topic, item.key)] > item.id

    def _add(self, item: Item) -> None:
        self.expire()
        self.cache.pop((item.topic, item.key), None)  # replaced: not a loss
        if item.size > CONFIG.max_bytes:
            hypothesis.event("model: item too big for the cache")
            self.losses.append(Lost(item, "evicted"))
            return
        if item.expires_at <= self.clock.now:
            self.losses.append(Lost(item, "expired"))
            return
        while len(self.cache) >= CONFIG.max_items or (
            sum(i.size for i in self.cache.values()) + item.size > CONFIG.max_bytes
        ):
            hypothesis.event(
                "model: evicted "
                + ("by count" if len(self.cache) >= CONFIG.max_items else "by bytes")
            )
            oldest_key = next(iter(self.cache))
            self.losses.append(Lost(self.cache.pop(oldest_key), "evicted"))
        self.cache[(item.topic, item.key)] = item


@dataclass
class Subscriber:
    subscription: Subscription
    topics: frozenset[str]
    opening: list[Event]  # the events it must start with: reset?, replay, live marker
    cursor: int  # index in `published` of the first item it has not accounted for
    position: StreamId  # every item on its topics up to this id is accounted for
    last_sent: StreamId | None  # the last item it was sent (its `since` before that)
    received: list[Event] = field(default_factory=list)


class SubscriptionMachine(RuleBasedStateMachine):
    """Publishes, clock moves, subscribes and polls against a `MemoryBackend` and a model.

    The model keeps the latest item per (topic, key) in insertion order. Before every read
    it drops items whose ``expires_at`` has come (a loss, "expired"). Adding an item first
    drops the older item of its (topic, key) (not a loss); an item bigger than the byte
    bound is a loss ("evicted") and so is one that arrives expired ("expired"); otherwise
    the oldest items are evicted (a loss, "evicted") until the item fits the count and byte
    bounds. The live buffer keeps the last ``LIVE_BUFFER`` items once it holds more than
    twice that many; a subscriber whose next unread item left it is *overrun*.

    A subscriber has *accounted for* every item on its topics up to its *position*: the
    last id issued when it subscribed or was last polled until nothing was ready. An item
    it *needs* is one on its topics after its position (after its ``since`` when it
    subscribes); a needed item is *gone* when it left the cache by expiry or eviction,
    even if a newer item of its key came later (being replaced is not being gone). Checked
    for every subscriber, each time it is polled dry:

    - item ids strictly increase, and every item is the published object itself;
    - the stream opens with exactly: a reset iff ``since`` is before the floor
      ("restarted"), after the last issued id ("unknown_id", replaying everything) or a
      needed item is gone (the newest such loss's reason); then the model's cache
      contents after ``since`` on its topics at subscribe time; then ``Live(last id)``;
    - not overrun: exactly the items published since on its topics, and no reset;
    - overrun: a reset first iff a needed item is gone (reason of the newest such loss,
      ``requested`` = the last item sent, ``oldest`` = the oldest cached id on its
      topics), then needed items only; every needed item arrives unless it is gone or
      was superseded by a newer item of the same (topic, key).
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(T0)
        self.backend = MemoryBackend(CONFIG, clock=self.clock)
        self.model = ModelLog(self.clock, self.backend.replica.floor)
        self.subscribers: list[Subscriber] = []

    # -- operations -------------------------------------------------------------------

    @initialize(
        topics=st.sampled_from(SUBSCRIBER_TOPICS),
        since_kind=st.sampled_from(["none", "before_floor", "after"]),
        data=st.data(),
    )
    def subscribe_first(
        self, topics: tuple[str, ...], since_kind: str, data: st.DataObject
    ) -> None:
        """Every run has a subscriber that sees the whole history."""
        self.subscribe(topics, since_kind, data, None)

    @rule(draft=drafts)
    def publish(self, draft: Draft) -> None:
        self._publish([draft])

    @rule(batch=st.lists(drafts, min_size=2, max_size=4))
    def publish_batch(self, batch: list[Draft]) -> None:
        self._publish(batch)

    @rule(burst=st.lists(drafts, min_size=2 * LIVE_BUFFER + 1, max_size=2 * LIVE_BUFFER + 3))
    def publish_while_subscribers_are_slow(self, burst: list[Draft]) -> None:
        """More items than the live buffer holds, one at a time, with nobody polling."""
        for draft in burst:
            self._publish([draft])

    @rule(ms=st.sampled_from([0, 1, 3, 10, 30, 100]))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule(ms=st.sampled_from([1, 5, 50]))
    def clock_steps_back(self, ms: int) -> None:
        self.clock.advance(-ms)

    @rule(
        topics=st.sampled_from(SUBSCRIBER_TOPICS),
        since_kind=st.sampled_from(["none", "issued", "near_issued", "before_floor", "after"]),
        data=st.data(),
        last=st.one_of(st.none(), st.integers(1, 4)),
    )
    def subscribe(
        self, topics: tuple[str, ...], since_kind: str, data: st.DataObject, last: int | None
    ) -> None:
        if len(self.subscribers) == MAX_SUBSCRIBERS:  # make room: check and close the oldest
            oldest = self.subscribers.pop(0)
            self._poll_and_check(oldest)
            oldest.subscription.close()
        since = self._pick_since(since_kind, data)
        wanted = frozenset(topics)
        subscription = self.backend.subscribe(topics, since, last=last)
        self.subscribers.append(
            Subscriber(
                subscription=subscription,
                topics=wanted,
                opening=self._expected_opening(wanted, since, last),
                cursor=len(self.model.published),
                position=self.model.last_id or ORIGIN,
                last_sent=since,
            )
        )

    @rule(data=st.data())
    def poll_until_nothing_is_ready(self, data: st.DataObject) -> None:
        if not self.subscribers:
            return
        subscriber = data.draw(st.sampled_from(self.subscribers))
        self._poll_and_check(subscriber)

    @rule(data=st.data())
    def close_a_subscriber(self, data: st.DataObject) -> None:
        if not self.subscribers:
            return
        subscriber = data.draw(st.sampled_from(self.subscribers))
        subscriber.subscription.close()
        self.subscribers.remove(subscriber)
        assert subscriber.subscription.poll() is None

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def cache_matches_the_model(self) -> None:
        expected = self.model.cached(frozenset(), None)
        assert describe(self.backend.items()) == describe(expected)
        assert self.backend.items() == expected

    @invariant()
    def every_open_subscriber_is_counted(self) -> None:
        assert self.backend.replica.subscriber_count == len(self.subscribers)

    def teardown(self) -> None:
        for subscriber in self.subscribers:
            self._poll_and_check(subscriber)
        self.backend.replica.close()

    # -- the model's expectations -----------------------------------------------------

    def _publish(self, batch: list[Draft]) -> None:
        now, last = self.clock.now, self.model.last_id
        items = self.backend.publish_now(batch)
        ids = [item.id for item in items]
        assert ids == sorted(set(ids)), "ids within a batch increase"
        assert ids[0] > (last or ORIGIN), "ids increase across batches, whatever the clock does"
        assert ids[0] >= self.model.floor
        for item, draft in zip(items, batch, strict=True):
            ttl = CONFIG.ttl_default_ms if draft.ttl_ms is None else draft.ttl_ms
            assert (item.topic, item.data, item.created_at) == (draft.topic, draft.data, now)
            assert item.key == (str(item.id) if draft.key is None else draft.key)
            assert item.expires_at == now + ttl
        self.model.publish(items)

    def _pick_since(self, kind: str, data: st.DataObject) -> StreamId | None:
        model = self.model
        floor, last = model.floor, model.last_id
        if kind == "issued" and model.published:
            return data.draw(st.sampled_from(model.published)).id
        if kind == "near_issued" and model.published:
            near = data.draw(st.sampled_from(model.published)).id
            return StreamId(near.ms, near.seq + 1)
        if kind == "before_floor":
            return StreamId(floor.ms - data.draw(st.integers(1, 3)), data.draw(st.integers(0, 2)))
        if kind == "after":
            top = last or floor
            return data.draw(
                st.sampled_from([StreamId(top.ms, top.seq + 1), StreamId(top.ms + 7, 0)])
            )
        return None

    def _expected_opening(
        self, topics: frozenset[str], since: StreamId | None, last: int | None
    ) -> list[Event]:
        model = self.model
        opening: list[Event] = []
        after = since
        reason: ResetReason | None = None
        if since is not None:
            if since < model.floor:
                reason = "restarted"
            elif model.last_id is None or since > model.last_id:
                reason, after = "unknown_id", None
            elif gone := model.losses_after(since, topics):
                reason = max(gone, key=lambda lost: lost.item.id).reason
        replay = model.cached(topics, after)
        if last is not None and len(replay) > last:
            # The newest `last` only: what is older than the newest item left out is not
            # needed, so only a loss after that item counts (an unknown id stays one).
            skipped, replay = replay[-last - 1], replay[-last:]
            hypothesis.event("opening: items left out by last")
            if reason is not None and reason != "unknown_id":
                gone = model.losses_after(skipped.id, topics)
                reason = max(gone, key=lambda lost: lost.item.id).reason if gone else None
        if since is not None:
            hypothesis.event(f"opening reset: {reason}")
            if reason is not None:
                opening.append(Reset(reason, since, model.oldest(topics)))
        opening += replay
        opening.append(Live(model.last_id, len(replay)))
        return opening

    def _poll_and_check(self, subscriber: Subscriber) -> None:
        model = self.model
        hypothesis.event(f"polled {'again' if subscriber.received else 'for the first time'}")
        events = drain(subscriber.subscription)
        if not subscriber.received:
            opening, events = events[: len(subscriber.opening)], events[len(subscriber.opening) :]
            assert describe(opening) == describe(subscriber.opening)
            assert opening == subscriber.opening
            subscriber.received += opening
            self._note_sent(subscriber, opening)

        if subscriber.cursor >= model.buffer_start:  # not overrun: everything, as published
            expected = [
                item
                for item in model.published[subscriber.cursor :]
                if on_topics(item, subscriber.topics)
            ]
            assert describe(events) == describe(expected)
            assert events == expected
        else:
            self._check_catch_up(subscriber, events)

        subscriber.received += events
        self._note_sent(subscriber, events)
        subscriber.cursor = len(model.published)
        subscriber.position = model.last_id or ORIGIN

        items = [event for event in subscriber.received if isinstance(event, Item)]
        ids = [item.id for item in items]
        assert ids == sorted(set(ids)), f"ids not strictly increasing: {describe(items)}"
        by_id = {item.id: item for item in model.published}
        assert all(by_id[item.id] is item for item in items)

    def _check_catch_up(self, subscriber: Subscriber, events: list[Event]) -> None:
        model, topics, position = self.model, subscriber.topics, subscriber.position
        gone = model.losses_after(position, topics)
        resets = [event for event in events if isinstance(event, Reset)]
        items = [event for event in events if isinstance(event, Item)]
        assert not any(isinstance(event, Live) for event in events)
        hypothesis.event(f"overrun: catch-up {'with' if gone else 'without'} a reset")
        if gone:
            newest = max(gone, key=lambda lost: lost.item.id)
            expected_reset = Reset(
                newest.reason,
                subscriber.last_sent,
                model.oldest(topics),
            )
            assert resets == [expected_reset], describe(events)
            assert events[0] == expected_reset
        else:
            assert resets == [], f"spurious reset: {describe(events)}"

        needed = [
            item for item in model.published if on_topics(item, topics) and item.id > position
        ]
        needed_ids = {item.id for item in needed}
        assert all(item.id in needed_ids for item in items), describe(events)
        delivered = {item.id for item in items}
        gone_ids = {lost.item.id for lost in gone}
        if any(item.id not in delivered and model.superseded(item) for item in needed):
            hypothesis.event("overrun: superseded items skipped")
        for item in needed:
            assert item.id in delivered or item.id in gone_ids or model.superseded(item), (
                f"{item.id} missing from catch-up {describe(events)}"
            )

    @staticmethod
    def _note_sent(subscriber: Subscriber, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, Item):
                subscriber.last_sent = event.id


TestSubscriptionModel = SubscriptionMachine.TestCase
TestSubscriptionModel.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
