"""The item cache: latest item per (topic, key), bounded by ttl, count and bytes, with losses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streaming import Item, ItemCache, Loss, StreamId
from streaming.cache import _IdIndex
from tests.core.helpers import T0, FakeClock, make_item, sid

ORIGIN = sid("0-0")


def new_cache(
    clock: FakeClock, *, max_items: int = 100, max_bytes: int = 10**6, max_loss_topics: int = 100
) -> ItemCache:
    return ItemCache(
        max_items=max_items, max_bytes=max_bytes, clock=clock, max_loss_topics=max_loss_topics
    )


def ids(cache: ItemCache, topics: tuple[str, ...] = ()) -> list[str]:
    return [str(item.id) for item in cache.after(None, topics)]


def test_get_returns_the_added_item(clock: FakeClock) -> None:
    cache = new_cache(clock)
    item = make_item("1000000-0", key="k", topic="t")
    cache.add(item)
    assert cache.get("t", "k") is item


def test_newer_item_with_the_same_key_replaces_the_older(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k"))
    newer = make_item("1000000-1", key="k")
    cache.add(newer)
    assert cache.get("default", "k") is newer
    assert ids(cache) == ["1000000-1"]
    assert len(cache) == 1


def test_replacing_an_item_is_not_a_loss(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k"))
    cache.add(make_item("1000000-1", key="k"))
    assert cache.loss_after(ORIGIN) is None


def test_the_same_key_on_two_topics_is_two_items(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k", topic="a"))
    cache.add(make_item("1000000-1", key="k", topic="b"))
    assert ids(cache) == ["1000000-0", "1000000-1"]


def test_items_without_a_key_are_keyed_by_their_own_id(clock: FakeClock) -> None:
    cache = new_cache(clock)
    first, second = make_item("1000000-0"), make_item("1000000-1")
    cache.add(first)
    cache.add(second)
    assert first.key == "1000000-0"
    assert cache.get("default", "1000000-0") is first
    assert ids(cache) == ["1000000-0", "1000000-1"]


def test_an_item_is_cached_until_the_millisecond_it_expires(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k", ttl=10))
    clock.advance(9)
    cache.expire()
    assert ids(cache) == ["1000000-0"]
    clock.advance(1)
    cache.expire()
    assert ids(cache) == []


def test_expired_items_are_recorded_as_expired_losses(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k", ttl=10))
    clock.advance(10)
    cache.expire()
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-0"), "expired")


def test_get_never_returns_an_expired_item(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k", ttl=10))
    clock.advance(10)
    assert cache.get("default", "k") is None


def test_an_item_replacing_an_expired_one_records_the_expiry(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k", ttl=10))
    clock.advance(10)
    cache.add(make_item("1000010-0", key="k", created_at=T0 + 10))
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-0"), "expired")
    assert ids(cache) == ["1000010-0"]


def test_the_count_bound_evicts_the_oldest_item_first(clock: FakeClock) -> None:
    cache = new_cache(clock, max_items=2)
    for seq in range(3):
        cache.add(make_item(f"1000000-{seq}"))
    assert ids(cache) == ["1000000-1", "1000000-2"]


def test_evicted_items_are_recorded_as_evicted_losses(clock: FakeClock) -> None:
    cache = new_cache(clock, max_items=2)
    for seq in range(4):
        cache.add(make_item(f"1000000-{seq}"))
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-1"), "evicted")
    assert cache.loss_after(sid("1000000-1")) is None


def test_a_replaced_key_counts_as_new_for_eviction(clock: FakeClock) -> None:
    cache = new_cache(clock, max_items=2)
    cache.add(make_item("1000000-0", key="a"))
    cache.add(make_item("1000000-1", key="b"))
    cache.add(make_item("1000000-2", key="a"))
    cache.add(make_item("1000000-3", key="c"))
    assert ids(cache) == ["1000000-2", "1000000-3"]


def test_the_byte_bound_evicts_the_oldest_items_until_the_new_one_fits(
    clock: FakeClock,
) -> None:
    items = [make_item(f"1000000-{seq}", data="x" * 100) for seq in range(4)]
    cache = new_cache(clock, max_bytes=3 * items[0].size)
    for item in items:
        cache.add(item)
    assert ids(cache) == ["1000000-1", "1000000-2", "1000000-3"]
    assert cache.bytes == sum(item.size for item in items[1:])
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-0"), "evicted")


def test_a_big_item_evicts_as_many_old_items_as_it_needs(clock: FakeClock) -> None:
    small = [make_item(f"1000000-{seq}", data="x") for seq in range(3)]
    big = make_item("1000000-3", data="x" * 200)
    cache = new_cache(clock, max_bytes=big.size + small[0].size)
    for item in [*small, big]:
        cache.add(item)
    assert ids(cache) == ["1000000-2", "1000000-3"]


def test_an_item_larger_than_the_byte_bound_is_not_kept_and_is_a_loss(
    clock: FakeClock,
) -> None:
    small = make_item("1000000-0", key="other")
    huge = make_item("1000000-1", key="k", data="x" * 1000)
    cache = new_cache(clock, max_bytes=500)
    cache.add(small)
    cache.add(huge)
    assert ids(cache) == ["1000000-0"]
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-1"), "evicted")


def test_an_item_expired_on_arrival_is_a_loss_and_evicts_nothing(clock: FakeClock) -> None:
    cache = new_cache(clock, max_items=2)
    cache.add(make_item("1000000-0"))
    cache.add(make_item("1000000-1"))
    clock.advance(100)
    cache.add(make_item("1000000-2", ttl=50))  # a replica loading an old entry
    assert ids(cache) == ["1000000-0", "1000000-1"]
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-2"), "expired")


def test_reads_do_not_change_the_eviction_order(clock: FakeClock) -> None:
    cache = new_cache(clock, max_items=2)
    cache.add(make_item("1000000-0", key="old"))
    cache.add(make_item("1000000-1", key="new"))
    assert cache.get("default", "old") is not None
    assert ids(cache)
    assert cache.after(None, ("default",), limit=1)
    cache.add(make_item("1000000-2", key="newest"))
    assert cache.get("default", "old") is None
    assert ids(cache) == ["1000000-1", "1000000-2"]


def test_after_returns_the_items_after_since_in_id_order(clock: FakeClock) -> None:
    cache = new_cache(clock)
    for text in ["9-5", "10-0", "10-1", "11-0"]:
        cache.add(make_item(text))
    assert [str(i.id) for i in cache.after(sid("10-0"))] == ["10-1", "11-0"]


def test_after_since_between_cached_ids_starts_at_the_next_id(clock: FakeClock) -> None:
    cache = new_cache(clock)
    for text in ["10-0", "12-0"]:
        cache.add(make_item(text))
    assert [str(i.id) for i in cache.after(sid("11-3"))] == ["12-0"]


def test_after_without_since_returns_everything(clock: FakeClock) -> None:
    cache = new_cache(clock)
    for seq in range(3):
        cache.add(make_item(f"1000000-{seq}"))
    assert ids(cache) == ["1000000-0", "1000000-1", "1000000-2"]


def test_after_merges_several_topics_in_id_order(clock: FakeClock) -> None:
    cache = new_cache(clock)
    for seq, topic in enumerate("abcabcab"):
        cache.add(make_item(f"1000000-{seq}", topic=topic))
    found = cache.after(sid("1000000-0"), ("a", "c"))
    assert [(str(i.id), i.topic) for i in found] == [
        ("1000000-2", "c"),
        ("1000000-3", "a"),
        ("1000000-5", "c"),
        ("1000000-6", "a"),
    ]


def test_after_limit_counts_across_topics(clock: FakeClock) -> None:
    cache = new_cache(clock)
    for seq, topic in enumerate("ababab"):
        cache.add(make_item(f"1000000-{seq}", topic=topic))
    assert [str(i.id) for i in cache.after(None, ("a", "b"), limit=3)] == [
        "1000000-0",
        "1000000-1",
        "1000000-2",
    ]
    assert [str(i.id) for i in cache.after(None, limit=2)] == ["1000000-0", "1000000-1"]


def test_after_on_an_unknown_topic_is_empty(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", topic="a"))
    assert cache.after(None, ("nope",)) == []


@given(
    topics=st.lists(st.sampled_from("abc"), min_size=1, max_size=40),
    replaced=st.sets(st.integers(0, 39)),
    since=st.integers(-1, 40),
    wanted=st.sampled_from([(), ("a",), ("a", "c"), ("b", "nope")]),
)
def test_newest_is_after_read_backwards(
    topics: list[str], replaced: set[int], since: int, wanted: tuple[str, ...]
) -> None:
    """Newest first, holes (replaced items) skipped, several topics merged."""
    cache = new_cache(FakeClock(T0))
    for seq, topic in enumerate(topics):
        cache.add(make_item(f"1000000-{seq}", topic=topic, key=f"k{seq}"))
    for seq in replaced & set(range(len(topics))):  # replaced by a newer item of the key
        cache.add(make_item(f"1000001-{seq}", topic=topics[seq], key=f"k{seq}"))
    start = None if since < 0 else sid(f"1000000-{since}")
    assert list(cache.newest(start, wanted)) == cache.after(start, wanted)[::-1]


def test_oldest_is_the_smallest_cached_id_on_the_topics(clock: FakeClock) -> None:
    cache = new_cache(clock)
    assert cache.oldest() is None
    for seq, topic in enumerate("abc"):
        cache.add(make_item(f"1000000-{seq}", topic=topic))
    assert cache.oldest() == sid("1000000-0")
    assert cache.oldest(("c", "b")) == sid("1000000-1")
    assert cache.oldest(("nope",)) is None


def test_loss_after_only_reports_losses_on_the_given_topics(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", topic="a", ttl=10))
    cache.add(make_item("1000000-1", topic="b"))
    clock.advance(10)
    cache.expire()
    assert cache.loss_after(ORIGIN, ("b",)) is None
    assert cache.loss_after(ORIGIN, ("a", "b")) == Loss(sid("1000000-0"), "expired")
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-0"), "expired")


def test_loss_after_reports_the_newest_loss(clock: FakeClock) -> None:
    cache = new_cache(clock, max_items=2)
    cache.add(make_item("1000000-0", ttl=100))
    cache.add(make_item("1000000-1", ttl=10))
    clock.advance(10)
    cache.expire()
    cache.add(make_item("1000010-0", created_at=T0 + 10))
    cache.add(make_item("1000010-1", created_at=T0 + 10))  # evicts 1000000-0
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-1"), "expired")


def test_loss_after_ignores_losses_at_or_before_since(clock: FakeClock) -> None:
    cache = new_cache(clock, max_items=1)
    cache.add(make_item("1000000-0"))
    cache.add(make_item("1000000-1"))
    assert cache.loss_after(sid("1000000-0")) is None


def test_a_topic_dropped_from_the_loss_log_still_reports_its_losses(clock: FakeClock) -> None:
    # The loss log tracks one topic here; "a" is folded out, then tracked again.
    cache = new_cache(clock, max_loss_topics=1)
    cache.add(make_item("1000000-0", topic="a", ttl=1_000))
    cache.add(make_item("1000000-1", topic="a", ttl=10))
    cache.add(make_item("1000000-2", topic="b", ttl=20))
    clock.advance(10)
    cache.expire()  # loses a@1000000-1
    clock.advance(10)
    cache.expire()  # loses b@1000000-2: "a" is folded out of the log
    clock.advance(1_000)
    cache.expire()  # loses a@1000000-0: "a" is tracked again
    loss = cache.loss_after(sid("1000000-0"), ("a",))
    assert loss is not None
    assert loss.id >= sid("1000000-1")


def test_bytes_is_the_total_size_of_the_cached_items(clock: FakeClock) -> None:
    cache = new_cache(clock)
    items = [make_item(f"1000000-{seq}", data="y" * seq) for seq in range(3)]
    for item in items:
        cache.add(item)
    assert cache.bytes == sum(item.size for item in items)


def test_replacing_an_item_in_the_millisecond_it_expires_keeps_the_cache_consistent() -> None:
    # The clock moves on between reads, as a wall clock may cross a millisecond mid-call.
    clock = FakeClock(T0)
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k", ttl=1))
    clock.tick = 1
    newer = make_item("1000001-0", key="k", created_at=T0 + 1)
    cache.add(newer)
    clock.tick = 0
    cache.expire()
    assert cache.after(None) == [newer]
    assert cache.get("default", "k") is newer


def test_an_item_expiring_while_it_is_added_keeps_the_cache_consistent() -> None:
    clock = FakeClock(T0)
    cache = new_cache(clock)
    clock.tick = 1
    cache.add(make_item("1000000-0", key="k", ttl=2))
    clock.tick = 0
    clock.advance(5)
    cache.expire()
    assert cache.after(None) == []
    assert len(cache) == 0
    assert cache.bytes == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["append", "append", "older", "remove", "remove"]), st.integers()
        ),
        max_size=400,
    ),
    st.integers(1, 5),
)
def test_the_id_index_reads_like_a_sorted_map(ops: list[tuple[str, int]], limit: int) -> None:
    # New ids at the end, some older ones (history loaded late), removals and re-adds.
    index, model = _IdIndex(), dict[StreamId, Item]()
    newest = 0
    for op, n in ops:
        if op == "append":
            newest += 1
            ident = StreamId(1_000_000, newest)
        elif op == "older":
            ident = StreamId(1_000_000, n % (newest + 1))
        else:
            ident = sorted(model)[n % len(model)] if model else StreamId(0, 0)
        if op == "remove" and ident in model:
            index.remove_all([model.pop(ident)])
        elif op != "remove" and ident not in model:
            model[ident] = make_item(str(ident))
            index.add(model[ident])
        expected = [model[i] for i in sorted(model)]
        since = StreamId(1_000_000, n % (newest + 1))
        assert index.after(None, None) == expected
        assert index.after(since, limit) == [i for i in expected if i.id > since][:limit]
        assert index.first() == (expected[0].id if expected else None)
        assert len(index) == len(model)


def test_a_batch_that_repeats_a_key_keeps_its_last_item_without_a_loss(clock: FakeClock) -> None:
    cache = new_cache(clock)
    cache.add(make_item("1000000-0", key="k"))
    batch = [make_item(f"1000000-{seq}", key="k", data="x" * seq) for seq in range(1, 4)]
    cache.add_all(batch)
    assert ids(cache) == ["1000000-3"]
    assert cache.get("default", "k") is batch[-1]
    assert cache.bytes == batch[-1].size
    assert cache.topic_stats("default").bytes == batch[-1].size
    assert cache.loss_after(ORIGIN) is None


def test_a_batch_larger_than_the_cache_keeps_its_newest_items(clock: FakeClock) -> None:
    cache = new_cache(clock, max_items=2)
    cache.add(make_item("1000000-0", topic="old"))
    cache.add_all([make_item(f"1000000-{seq}", topic=f"t{seq % 2}") for seq in range(1, 6)])
    assert ids(cache) == ["1000000-4", "1000000-5"]
    assert cache.loss_after(ORIGIN) == Loss(sid("1000000-3"), "evicted")
    assert cache.loss_after(ORIGIN, ["old"]) == Loss(sid("1000000-0"), "evicted")
    assert sorted(cache.topics()) == ["t0", "t1"]
    assert cache.bytes == sum(cache.topic_stats(t).bytes for t in ("t0", "t1"))


def test_a_batch_replacing_an_item_the_byte_bound_pushes_out_is_not_a_loss(
    clock: FakeClock,
) -> None:
    first = make_item("1000000-0", key="a", data="x" * 100)
    cache = new_cache(clock, max_bytes=2 * first.size)
    cache.add_all([first, make_item("1000000-1", key="b", data="x" * 100)])
    # The new "a" fits only without the old one, which is the oldest: it goes as replaced.
    cache.add_all([make_item("1000000-2", key="a", data="y" * 100)])
    assert ids(cache) == ["1000000-1", "1000000-2"]
    assert cache.loss_after(ORIGIN) is None
    assert cache.bytes == cache.topic_stats("default").bytes == 2 * first.size


_BATCH_ITEMS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", None]),  # key (None: keyed by its id)
        st.sampled_from(["t", "u"]),  # topic
        st.integers(0, 120),  # data length
        st.sampled_from([60_000, 0]),  # ttl: 0 is expired on arrival
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_BATCH_ITEMS, max_size=6), st.integers(1, 4), st.integers(150, 900))
def test_a_batch_is_cached_as_its_items_added_one_by_one(
    batches: list[list[tuple[str | None, str, int, int]]], max_items: int, max_bytes: int
) -> None:
    clock = FakeClock()
    one_by_one = new_cache(clock, max_items=max_items, max_bytes=max_bytes)
    at_once = new_cache(clock, max_items=max_items, max_bytes=max_bytes)
    seq = 0
    for batch in batches:
        items = []
        for key, topic, length, ttl in batch:
            items.append(
                make_item(f"1000000-{seq}", key=key, topic=topic, data="x" * length, ttl=ttl)
            )
            seq += 1
        for item in items:
            one_by_one.add(item)
        at_once.add_all(items)
        for topics in ((), ("t",), ("u",)):
            assert at_once.after(None, topics) == one_by_one.after(None, topics)
            assert at_once.loss_after(ORIGIN, topics) == one_by_one.loss_after(ORIGIN, topics)
        assert at_once.bytes == one_by_one.bytes == sum(i.size for i in at_once.after(None))
        for topic in ("t", "u"):
            stats = at_once.topic_stats(topic)
            assert stats == one_by_one.topic_stats(topic)
            assert stats.bytes == sum(i.size for i in at_once.after(None, (topic,)))
