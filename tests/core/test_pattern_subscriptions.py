"""Subscriptions on patterns (a topic holding `*`), the cache's figures per topic, and
presence: how many subscriptions receive a topic."""

from __future__ import annotations

import pytest

from streaming import Draft, Item, Live, MemoryBackend, Reset
from tests.core.helpers import BackendFactory, FakeClock, drain


def publish(
    backend: MemoryBackend, topic: str, *, key: str | None = None, ttl_ms: int | None = None
) -> Item:
    [item] = backend.publish_now([Draft("x", key=key, topic=topic, ttl_ms=ttl_ms)])
    return item


def test_a_pattern_selects_the_replay_and_the_live_items(backend: MemoryBackend) -> None:
    a1, _b, a2 = (publish(backend, topic) for topic in ["p.a", "q", "p.b"])
    subscription = backend.subscribe(["p.*"])
    assert drain(subscription) == [a1, a2, Live(a2.id, 2)]
    publish(backend, "p")
    fresh = publish(backend, "p.new")
    assert drain(subscription) == [fresh]


def test_a_loss_on_a_matching_topic_gives_a_reset(backend: MemoryBackend, clock: FakeClock) -> None:
    start = publish(backend, "p.a")
    publish(backend, "p.lost", ttl_ms=10)
    clock.advance(10)
    kept = publish(backend, "p.a")
    events = drain(backend.subscribe(["p.*"], since=start.id))
    assert events == [Reset("expired", start.id, start.id), kept, Live(kept.id, 1)]


def test_a_loss_on_another_topic_gives_no_reset(backend: MemoryBackend, clock: FakeClock) -> None:
    start = publish(backend, "p.a")
    publish(backend, "q.lost", ttl_ms=10)
    clock.advance(10)
    kept = publish(backend, "p.a")
    assert drain(backend.subscribe(["p.*"], since=start.id)) == [kept, Live(kept.id, 1)]


def test_a_loss_on_a_topic_folded_out_of_the_loss_log_gives_a_reset(
    make_backend: BackendFactory, clock: FakeClock
) -> None:
    # Past its bound the loss log keeps one watermark for every topic it no longer names:
    # a pattern may match any of them, so it counts (a needless reset, never a missing one).
    backend = make_backend()
    backend.replica.cache._losses._max_topics = 1
    start = publish(backend, "p.a")
    publish(backend, "p.lost", ttl_ms=10)
    publish(backend, "q.lost", ttl_ms=20)
    clock.advance(20)
    kept = publish(backend, "p.a")
    events = drain(backend.subscribe(["p.*"], since=start.id))
    assert [type(event) for event in events] == [Reset, Item, Live]
    assert events[1] == kept


def test_the_cache_counts_items_bytes_and_the_newest_id_per_topic(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    first = publish(backend, "t", key="a")
    second = publish(backend, "t", key="b", ttl_ms=10)
    replaced = publish(backend, "t", key="a")
    cache = backend.replica.cache
    stats = cache.topic_stats("t")
    assert (stats.items, stats.bytes, stats.newest) == (2, second.size + replaced.size, replaced.id)
    assert first.id < replaced.id
    clock.advance(10)
    cache.expire()
    assert cache.topic_stats("t").bytes == replaced.size
    assert cache.topic_stats("none").items == 0


def test_presence_counts_each_subscription_once_per_topic(backend: MemoryBackend) -> None:
    presence = backend.replica.presence
    subscriptions = [
        backend.subscribe(["p.a"]),
        backend.subscribe(["p.a", "p.*", "*a"]),
        backend.subscribe(["p.*"]),
        backend.subscribe(),
    ]
    assert [presence.subscribers(t) for t in ["p.a", "p.b", "q", "xa"]] == [4, 3, 1, 2]
    assert presence.names() == ["p.a"]
    for subscription in subscriptions[1:]:
        subscription.close()
    assert [presence.subscribers(t) for t in ["p.a", "p.b"]] == [1, 0]
    subscriptions[0].close()
    assert presence.names() == []


@pytest.mark.parametrize("topics", [10, 200])  # merged per topic, or walked in id order
def test_pages_of_a_pattern_read_hold_every_matching_item_once_in_id_order(
    backend: MemoryBackend, topics: int
) -> None:
    published = [publish(backend, f"{'pq'[n % 2]}.{n % topics}") for n in range(3 * topics)]
    cache = backend.replica.cache
    expected = [item for item in published if item.topic.startswith("p.")]
    read: list[Item] = []
    while page := cache.after(read[-1].id if read else None, frozenset(["p.*"]), limit=7):
        read += page
    assert read == expected
