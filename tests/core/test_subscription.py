"""Subscriptions: an optional reset, the replay up to a cutoff, a live marker, then live items."""

from __future__ import annotations

import anyio
import pytest

from streaming import BackendClosed, Draft, Item, Live, MemoryBackend, Reset, StreamId
from streaming.subscription import SharedBatches
from tests.core.helpers import BackendFactory, FakeClock, describe, drain, item_ids, sid


def publish(
    backend: MemoryBackend,
    *,
    key: str | None = None,
    topic: str = "default",
    ttl_ms: int | None = None,
    data: object = "x",
) -> Item:
    [item] = backend.publish_now([Draft(data, key=key, topic=topic, ttl_ms=ttl_ms)])
    return item


def test_a_new_subscriber_gets_the_cache_then_the_live_marker(backend: MemoryBackend) -> None:
    first, second = publish(backend), publish(backend)
    events = drain(backend.subscribe())
    assert events[:2] == [first, second]
    assert events[2:] == [Live(second.id, 2)]


def test_the_live_marker_of_an_empty_log_has_no_cutoff(backend: MemoryBackend) -> None:
    assert drain(backend.subscribe()) == [Live(None, 0)]


def test_live_items_follow_the_live_marker(backend: MemoryBackend) -> None:
    subscription = backend.subscribe()
    assert drain(subscription) == [Live(None, 0)]
    item = publish(backend)
    assert drain(subscription) == [item]


def test_poll_returns_nothing_when_no_new_item_is_ready(backend: MemoryBackend) -> None:
    subscription = backend.subscribe()
    drain(subscription)
    assert subscription.poll() == []


def test_the_replay_is_in_id_order_across_topics(backend: MemoryBackend) -> None:
    published = [publish(backend, topic=topic) for topic in "abcab"]
    events = drain(backend.subscribe(["a", "b", "c"]))
    assert item_ids(events) == [str(item.id) for item in published]


def test_the_replay_holds_only_the_latest_item_per_key(backend: MemoryBackend) -> None:
    publish(backend, key="k", data=1)
    other = publish(backend, key="j")
    latest = publish(backend, key="k", data=2)
    assert drain(backend.subscribe()) == [other, latest, Live(latest.id, 2)]


def test_since_replays_only_the_items_after_it(backend: MemoryBackend) -> None:
    first, second, third = (publish(backend) for _ in range(3))
    events = drain(backend.subscribe(since=first.id))
    assert events == [second, third, Live(third.id, 2)]


def test_since_the_last_id_replays_nothing(backend: MemoryBackend) -> None:
    publish(backend)
    last = publish(backend)
    assert drain(backend.subscribe(since=last.id)) == [Live(last.id, 0)]


def test_the_cutoff_is_the_last_issued_id_on_any_topic(backend: MemoryBackend) -> None:
    mine = publish(backend, topic="a")
    other = publish(backend, topic="b")
    assert drain(backend.subscribe(["a"])) == [mine, Live(other.id, 1)]


def test_items_published_before_the_first_poll_arrive_once_each(backend: MemoryBackend) -> None:
    before = publish(backend)
    subscription = backend.subscribe()
    after = [publish(backend), publish(backend)]
    assert drain(subscription) == [before, Live(before.id, 1), *after]


def test_a_batch_published_between_polls_arrives_whole_and_in_order(
    backend: MemoryBackend,
) -> None:
    subscription = backend.subscribe()
    drain(subscription)
    batch = backend.publish_now([Draft(n) for n in range(5)])
    assert drain(subscription) == batch


def test_topics_filter_the_replay_and_the_live_items(backend: MemoryBackend) -> None:
    a1 = publish(backend, topic="a")
    b1 = publish(backend, topic="b")
    subscription = backend.subscribe(["a"])
    assert drain(subscription) == [a1, Live(b1.id, 1)]
    publish(backend, topic="b")
    a2 = publish(backend, topic="a")
    assert drain(subscription) == [a2]


def test_no_topics_means_every_topic(backend: MemoryBackend) -> None:
    published = [publish(backend, topic=topic) for topic in "ab"]
    subscription = backend.subscribe()
    live = [publish(backend, topic=topic) for topic in "ba"]
    assert drain(subscription) == [*published, Live(published[-1].id, len(published)), *live]


def test_every_subscriber_gets_the_same_item_object(backend: MemoryBackend) -> None:
    replayed = publish(backend)
    early, late = backend.subscribe(), backend.subscribe()
    drain(early)
    live = publish(backend)
    from_early = [e for e in drain(early) if isinstance(e, Item)]
    from_late = [e for e in drain(late) if isinstance(e, Item)]
    assert from_early[0] is live
    assert from_late[0] is replayed
    assert from_late[1] is from_early[0] is live


def test_a_needed_item_that_expired_gives_a_reset_expired(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    start = publish(backend)
    publish(backend, key="short", ttl_ms=10)
    kept = publish(backend)
    clock.advance(10)
    events = drain(backend.subscribe(since=start.id))
    assert events == [Reset("expired", start.id, start.id), kept, Live(kept.id, 1)]


def test_a_needed_item_that_was_evicted_gives_a_reset_evicted(
    make_backend: BackendFactory,
) -> None:
    backend = make_backend(max_items=2)
    start = publish(backend)
    second, third = publish(backend), publish(backend)  # evicts start
    fourth = publish(backend)  # evicts second
    events = drain(backend.subscribe(since=start.id))
    assert events == [Reset("evicted", start.id, third.id), third, fourth, Live(fourth.id, 2)]
    assert second.id > start.id


def test_a_needed_item_that_was_only_replaced_gives_no_reset(backend: MemoryBackend) -> None:
    start = publish(backend)
    publish(backend, key="k", data=1)
    latest = publish(backend, key="k", data=2)
    assert drain(backend.subscribe(since=start.id)) == [latest, Live(latest.id, 1)]


def test_losses_at_or_before_since_give_no_reset(backend: MemoryBackend, clock: FakeClock) -> None:
    lost = publish(backend, ttl_ms=10)
    clock.advance(10)
    kept = publish(backend)
    assert drain(backend.subscribe(since=lost.id)) == [kept, Live(kept.id, 1)]


def test_losses_on_other_topics_give_no_reset(backend: MemoryBackend, clock: FakeClock) -> None:
    start = publish(backend, topic="a")
    publish(backend, topic="b", ttl_ms=10)
    clock.advance(10)
    kept = publish(backend, topic="a")
    assert drain(backend.subscribe(["a"], since=start.id)) == [kept, Live(kept.id, 1)]


def test_since_before_the_floor_gives_a_reset_restarted_and_the_whole_cache(
    backend: MemoryBackend,
) -> None:
    first, second = publish(backend), publish(backend)
    before_floor = StreamId(backend.replica.floor.ms - 1, 7)
    events = drain(backend.subscribe(since=before_floor))
    assert events == [Reset("restarted", before_floor, first.id), first, second, Live(second.id, 2)]


def test_since_after_the_last_id_gives_a_reset_unknown_id_and_the_whole_cache(
    backend: MemoryBackend,
) -> None:
    first, second = publish(backend), publish(backend)
    future = StreamId(second.id.ms + 1_000, 0)
    events = drain(backend.subscribe(since=future))
    assert events == [Reset("unknown_id", future, first.id), first, second, Live(second.id, 2)]


def test_since_on_an_empty_log_gives_a_reset_unknown_id(backend: MemoryBackend) -> None:
    since = backend.replica.floor
    assert drain(backend.subscribe(since=since)) == [
        Reset("unknown_id", since, None),
        Live(None, 0),
    ]


def test_limit_ends_the_stream_after_that_many_items(backend: MemoryBackend) -> None:
    first, second, _ = (publish(backend) for _ in range(3))
    subscription = backend.subscribe(limit=2)
    assert subscription.poll() == [first, second]
    assert subscription.poll() is None


def test_limit_does_not_count_resets_or_the_live_marker(backend: MemoryBackend) -> None:
    item = publish(backend)
    future = StreamId(item.id.ms + 1, 0)
    subscription = backend.subscribe(since=future, limit=2)
    assert drain(subscription) == [Reset("unknown_id", future, item.id), item, Live(item.id, 1)]
    live = publish(backend)
    assert subscription.poll() == [live]
    assert subscription.poll() is None


def test_limit_counts_live_items_and_cuts_a_batch(backend: MemoryBackend) -> None:
    subscription = backend.subscribe(limit=2)
    drain(subscription)
    batch = backend.publish_now([Draft(n) for n in range(3)])
    assert subscription.poll() == batch[:2]
    assert subscription.poll() is None


def test_a_stream_ended_by_its_limit_releases_the_subscriber(backend: MemoryBackend) -> None:
    publish(backend)
    subscription = backend.subscribe(limit=1)
    assert backend.replica.subscriber_count == 1
    while subscription.poll() is not None:
        pass
    assert subscription.closed
    assert backend.replica.subscriber_count == 0


def test_close_ends_the_stream_and_releases_the_subscriber(backend: MemoryBackend) -> None:
    subscription = backend.subscribe()
    assert backend.replica.subscriber_count == 1
    subscription.close()
    assert subscription.poll() is None
    assert backend.replica.subscriber_count == 0


def test_close_is_idempotent(backend: MemoryBackend) -> None:
    subscription = backend.subscribe()
    backend.subscribe()
    subscription.close()
    subscription.close()
    assert backend.replica.subscriber_count == 1


def test_a_slow_subscriber_within_the_live_buffer_misses_nothing(
    make_backend: BackendFactory,
) -> None:
    backend = make_backend(live_buffer_items=4)
    subscription = backend.subscribe()
    drain(subscription)
    published = [publish(backend, key="k", data=n) for n in range(4)]
    assert drain(subscription) == published


def test_an_overrun_subscriber_catches_up_from_the_cache_without_a_reset(
    make_backend: BackendFactory,
) -> None:
    backend = make_backend(live_buffer_items=2)
    subscription = backend.subscribe()
    drain(subscription)
    for n in range(6):
        publish(backend, key="k", data=n)  # superseded versions may be skipped
    other = publish(backend, key="j")
    events = drain(subscription)
    assert not any(isinstance(e, Reset) for e in events)
    assert events == backend.items()
    assert describe(events) == sorted(describe(events), key=sid)
    assert events[-1] is other


def test_an_overrun_subscriber_gets_a_reset_when_a_needed_item_was_lost(
    make_backend: BackendFactory, clock: FakeClock
) -> None:
    backend = make_backend(live_buffer_items=2)
    subscription = backend.subscribe()
    drain(subscription)
    sent = publish(backend)
    assert drain(subscription) == [sent]
    publish(backend, ttl_ms=5)
    clock.advance(5)
    later = [publish(backend) for _ in range(5)]
    events = drain(subscription)
    assert events == [Reset("expired", sent.id, sent.id), *later]


def test_an_overrun_subscriber_gets_no_reset_for_lost_items_it_already_had(
    make_backend: BackendFactory, clock: FakeClock
) -> None:
    backend = make_backend(live_buffer_items=2)
    subscription = backend.subscribe()
    drain(subscription)
    had = publish(backend, ttl_ms=5)
    assert drain(subscription) == [had]
    clock.advance(5)
    later = [publish(backend) for _ in range(5)]
    assert drain(subscription) == later


def test_an_overrun_subscriber_gets_no_reset_for_lost_items_on_other_topics(
    make_backend: BackendFactory, clock: FakeClock
) -> None:
    backend = make_backend(live_buffer_items=2)
    subscription = backend.subscribe(["a"])
    drain(subscription)
    publish(backend, topic="b", ttl_ms=5)
    clock.advance(5)
    later = [publish(backend, topic=topic) for topic in "ababab"]
    assert drain(subscription) == [item for item in later if item.topic == "a"]


def test_an_overrun_subscriber_that_never_polled_replays_then_catches_up(
    make_backend: BackendFactory,
) -> None:
    backend = make_backend(live_buffer_items=2)
    cached = publish(backend)
    subscription = backend.subscribe()
    later = [publish(backend) for _ in range(6)]
    assert drain(subscription) == [cached, Live(cached.id, 1), *later]


def test_an_overrun_subscriber_is_not_reset_again_for_a_loss_already_announced(
    make_backend: BackendFactory, clock: FakeClock
) -> None:
    backend = make_backend(live_buffer_items=2)
    start = publish(backend)
    publish(backend, ttl_ms=5)
    clock.advance(5)
    subscription = backend.subscribe(since=start.id)
    assert describe(drain(subscription)) == ["reset:expired", f"live:{start.id.ms}-1"]
    later = [publish(backend) for _ in range(5)]
    assert drain(subscription) == later


def test_an_overrun_subscriber_that_resumed_from_an_unknown_id_gets_later_items(
    make_backend: BackendFactory,
) -> None:
    backend = make_backend(live_buffer_items=2)
    future = StreamId(backend.replica.floor.ms + 1_000, 0)
    subscription = backend.subscribe(since=future)
    assert drain(subscription) == [Reset("unknown_id", future, None), Live(None, 0)]
    later = [publish(backend) for _ in range(5)]  # ids below `future`: the clock is behind
    assert drain(subscription) == later


def test_closing_the_backend_ends_every_stream(backend: MemoryBackend) -> None:
    publish(backend)
    subscription = backend.subscribe()
    backend.replica.close()
    assert subscription.poll() is None
    assert backend.replica.subscriber_count == 0


async def test_publishing_to_a_closed_backend_fails(backend: MemoryBackend) -> None:
    await backend.aclose()
    with pytest.raises(BackendClosed):
        backend.publish_now([Draft("late")])


async def test_next_batch_returns_what_is_ready_without_waiting(backend: MemoryBackend) -> None:
    item = publish(backend)
    subscription = backend.subscribe()
    with anyio.fail_after(1):
        assert await subscription.next_batch() == [item, Live(item.id, 1)]


async def test_next_batch_wakes_when_an_item_is_published(backend: MemoryBackend) -> None:
    subscription = backend.subscribe()
    assert await subscription.next_batch() == [Live(None, 0)]
    batches: list[object] = []

    async def consume() -> None:
        batches.append(await subscription.next_batch())

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            assert batches == []
            item = await backend.publish([Draft("hello")])
    assert batches == [item]


async def test_next_batch_ignores_items_on_other_topics(backend: MemoryBackend) -> None:
    subscription = backend.subscribe(["a"])
    await subscription.next_batch()
    batches: list[object] = []

    async def consume() -> None:
        batches.append(await subscription.next_batch())

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            await backend.publish([Draft("not mine", topic="b")])
            await anyio.wait_all_tasks_blocked()
            assert batches == []
            mine = await backend.publish([Draft("mine", topic="a")])
    assert batches == [mine]


async def test_next_batch_returns_none_when_the_backend_closes(backend: MemoryBackend) -> None:
    subscription = backend.subscribe()
    await subscription.next_batch()
    results: list[object] = []

    async def consume() -> None:
        results.append(await subscription.next_batch())

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            await backend.aclose()
    assert results == [None]
    assert backend.replica.subscriber_count == 0


async def test_iterating_a_subscription_yields_batches_and_releases_it(
    backend: MemoryBackend,
) -> None:
    item = publish(backend)
    seen: list[object] = []
    with anyio.fail_after(1):
        async for batch in backend.subscribe(limit=1):
            seen.append(batch)
    assert seen == [[item, Live(item.id, 1)]]
    assert backend.replica.subscriber_count == 0


def test_an_item_expiring_during_subscribe_is_replayed_or_announced() -> None:
    # The clock moves on at every read, as a wall clock may cross milliseconds mid-call.
    for ttl in range(1, 12):
        clock = FakeClock()
        backend = MemoryBackend(clock=clock)
        start = publish(backend)
        short = publish(backend, ttl_ms=ttl)
        clock.tick = 1
        subscription = backend.subscribe(since=start.id)
        clock.tick = 0
        events = drain(subscription)
        assert short in events or isinstance(events[0], Reset), (ttl, describe(events))


def test_subscribers_on_the_same_topics_share_one_live_batch(backend: MemoryBackend) -> None:
    first, second, other = backend.subscribe(["a"]), backend.subscribe(["a"]), backend.subscribe()
    for subscription in (first, second, other):
        drain(subscription)
    a1, b1 = publish(backend, topic="a"), publish(backend, topic="b")
    shared = SharedBatches()
    from_first, from_second = first.poll(shared), second.poll(shared)
    assert from_first == [a1]
    assert from_second is from_first  # read and filtered once, for both
    assert other.poll(shared) == [a1, b1]
    assert first.poll(SharedBatches()) == []


def test_a_shared_batch_does_not_hide_an_overrun(make_backend: BackendFactory) -> None:
    backend = make_backend(live_buffer_items=2)
    behind, current = backend.subscribe(), backend.subscribe()
    drain(behind)
    items = [publish(backend, key=str(n)) for n in range(6)]
    drain(current)
    shared = SharedBatches()
    assert current.poll(shared) == []
    assert behind.poll(shared) == items  # caught up from the cache, each item once


def test_a_new_epoch_resets_a_subscriber_that_kept_up(backend: MemoryBackend) -> None:
    # The log behind the replica lost history (a failover dropped writes): a subscriber may
    # hold items the log no longer has, so it gets a reset even though it was never overrun.
    subscription = backend.subscribe()
    drain(subscription)
    served = publish(backend)
    assert drain(subscription) == [served]
    kept = publish(backend)  # still in the log; the subscriber has not read it yet
    floor = StreamId(kept.id.ms + 1, 0)
    backend.replica.start_epoch(floor)
    backend.replica.load([kept])
    events = drain(subscription)
    assert events == [Reset("restarted", served.id, kept.id), kept]


def test_a_new_epoch_resets_a_subscriber_waiting_for_live_items(backend: MemoryBackend) -> None:
    subscription = backend.subscribe()
    served = publish(backend)
    drain(subscription)
    backend.replica.start_epoch(StreamId(served.id.ms + 1, 0))
    assert drain(subscription) == [Reset("restarted", served.id, None)]


def test_a_new_epoch_replays_a_subscriber_from_the_last_item_the_log_kept(
    backend: MemoryBackend,
) -> None:
    # A failover dropped the writes after `kept`: a subscriber that received one of them
    # gets a reset (naming its last id, as always), then what the log holds after `kept`.
    subscription = backend.subscribe()
    drain(subscription)
    kept, lost = publish(backend), publish(backend)
    assert drain(subscription) == [kept, lost]
    instead = Item.create(
        StreamId(lost.id.ms, lost.id.seq + 1), Draft("y"), created_at=0, expires_at=2**62
    )
    backend.replica.start_epoch(StreamId(lost.id.ms + 1, 0), kept.id)
    backend.replica.load([kept, instead])
    assert drain(subscription) == [Reset("restarted", lost.id, kept.id), instead]


def test_a_new_epoch_spares_a_subscriber_that_received_nothing_the_log_lost(
    backend: MemoryBackend,
) -> None:
    early = backend.subscribe()
    drain(early)
    kept = publish(backend)
    assert drain(early) == [kept]
    late = publish(backend)  # served to others; `early` has not read it
    backend.replica.start_epoch(StreamId(late.id.ms + 1, 0), kept.id)
    backend.replica.load([kept])
    assert drain(early) == []
