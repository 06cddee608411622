"""A publish on the Redis backend applies its own items at once when they follow, in the
log, what its instance has applied; otherwise its tail applies them in log order. Either
way every instance delivers every item once, in id order."""

from __future__ import annotations

import random
from typing import Any

import anyio
from redis.asyncio import Redis

from streaming import Draft, Item, StreamId
from streaming.backends.redis import RedisBackend, connector
from tests.redis_support import RedisProcess

ROUNDS = 40


async def test_a_publish_applies_its_items_before_it_returns(redis_server: RedisProcess) -> None:
    async with RedisBackend(connector(redis_server.url)) as backend:
        for n in range(ROUNDS):
            items = await backend.publish([Draft({"n": n, "i": i}) for i in range(3)])
            # No wait for the tail: the items are in the cache, and subscribers have them
            # (applied by the publish, or by the tail when its read of them came first).
            cached = [(item.id, item.json) for item in backend.items()[-3:]]
            assert cached == [(item.id, item.json) for item in items], f"round {n}"


def _bytes_sent(redis_server: RedisProcess) -> int:
    with redis_server.client() as client:
        stats: dict[str, int] = client.info("stats")
    return stats["total_net_output_bytes"]


async def test_the_tail_does_not_read_back_whole_the_batches_its_publishes_applied(
    redis_server: RedisProcess,
) -> None:
    # What wakes a caught-up tail is most often its own instance's batch, which the
    # publish applied: reading all of it back would cost Redis and the tail more than the
    # rest of the batch's path, only for the tail to skip it.
    batches, size = 20, 1_000
    async with RedisBackend(connector(redis_server.url)) as backend:
        before = _bytes_sent(redis_server)
        for n in range(batches):
            await backend.publish([Draft({"batch": n, "i": i}) for i in range(size)])
            await anyio.sleep(0.01)  # the tail's read of it: then the next publish
        sent = _bytes_sent(redis_server) - before
    entry = b'{"key":null,"topic":"default","data":{"batch":0,"i":0},"ttl":0}'
    logged = batches * size * len(entry)  # what the entries' payloads hold, at the least
    assert sent < logged / 2, f"Redis sent {sent:,} bytes for {logged:,} bytes of entries"


async def test_a_batch_answers_the_ids_and_json_the_log_gives_its_entries(
    redis_server: RedisProcess,
) -> None:
    # Adding thousands of entries takes Redis more than a millisecond: the ids stay in the
    # first one's, one after another, and the answer names them without reading them back.
    async with (
        RedisBackend(connector(redis_server.url)) as publisher,
        RedisBackend(connector(redis_server.url)) as reader,
    ):
        sizes = (1, 3_000, 2)
        batches = [await publisher.publish([Draft({"i": i}) for i in range(n)]) for n in sizes]
        client = Redis.from_url(redis_server.url)
        try:
            entries: Any = await client.xrange("tailcast:log", "-", "+")
        finally:
            await client.aclose()
        logged = [StreamId.trusted(raw) for raw, fields in entries if b"d" in fields]
        items = [item for batch in batches for item in batch]
        assert [item.id for item in items] == logged
        for batch in batches:
            assert {item.id.ms for item in batch} == {batch[0].id.ms}
        await reader.sync(items[-1].id)
        assert [item.json for item in reader.items()] == [item.json for item in items]


async def test_interleaved_publishes_reach_every_instance_once_in_id_order(
    redis_server: RedisProcess,
) -> None:
    # Two instances publish concurrently, several at a time each: a publish's items often
    # do not follow what its instance has applied (the other's came between, or another
    # publish of its own is answered out of order), and must then wait for the tail.
    rng = random.Random(13)
    async with (
        RedisBackend(connector(redis_server.url)) as first,
        RedisBackend(connector(redis_server.url)) as second,
    ):
        instances = (first, second)
        subscriptions = [instance.subscribe() for instance in instances]
        acked: list[Item] = []
        delivered: list[list[Item]] = [[], []]

        async def publish(instance: RedisBackend, size: int) -> None:
            acked.extend(await instance.publish([Draft(size) for _ in range(size)]))

        for _ in range(ROUNDS):
            async with anyio.create_task_group() as group:
                for _ in range(rng.randint(1, 6)):
                    group.start_soon(publish, rng.choice(instances), rng.randint(1, 200))
            newest = max(item.id for item in acked)
            for instance, subscription, got in zip(
                instances, subscriptions, delivered, strict=True
            ):
                await instance.sync(newest)
                while batch := subscription.poll():
                    got += [event for event in batch if isinstance(event, Item)]
        ids = sorted(item.id for item in acked)
        for instance, got in zip(instances, delivered, strict=True):
            assert [item.id for item in got] == ids, instance
