"""After a failover two masters can each write an entry under the same id (both wrote in
the same millisecond): the new master's log then holds, under the id of an item an
instance read from the old master and served, another item. The log lost that item as
surely as if its id were gone, so its subscribers get a ``reset`` and the instance
serves what the log holds. Seen in the fault matrix (the master paused, then resumed
while its replica was promoted): neither the tail's check nor a publish applied without
reading back told the two entries apart.

The state such a failover leaves is made here on one real Redis: the stream rewritten
with another item under the served item's id, then every client connection killed, as
Sentinel kills them on the old master when it demotes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import anyio
import orjson
import redis

from streaming import Draft, Item, StreamId
from streaming.backends.redis import RedisBackend, connector
from streaming.errors import BackendUnavailable
from streaming.events import Reset
from streaming.subscription import Event, Subscription
from tests.redis.helpers import LOG_STREAM
from tests.redis_support import RedisProcess

WITHIN = 10.0  # seconds for the instance to notice and send the reset


async def test_subscribers_of_an_item_replaced_under_its_id_get_a_reset(
    redis_server: RedisProcess,
) -> None:
    async with RedisBackend(connector(redis_server.url)) as backend:
        subscription = backend.subscribe()
        served = (await backend.publish([Draft({"from": "the old master"})]))[0]
        events = await _events(subscription, lambda got: _ids(got)[-1:] == [served.id])
        with redis.Redis.from_url(redis_server.url) as client:
            _replace(client, served.id, {"from": "the new master"})
            client.client_kill_filter(_type="normal", skipme=True)
        # One publish while the tail reconnects (its entry follows the replaced one), one
        # after: neither may be passed on as following the lost item.
        await _publish(backend, {"n": 1})
        await anyio.sleep(0.5)
        later = await _publish(backend, {"n": 2})
        events += await _events(subscription, lambda got: later.id in _ids(got))
        cached = {item.id: item.data for item in backend.items()}
    resets = [n for n, event in enumerate(events) if isinstance(event, Reset)]
    assert resets, events
    assert resets[0] == 1 + next(n for n, e in enumerate(events) if e == served)
    assert cached[served.id] == {"from": "the new master"}


async def test_an_instance_that_never_served_the_replaced_item_sends_no_reset(
    redis_server: RedisProcess,
) -> None:
    # The same rewrite without any instance having served the item: nothing to reset.
    async with RedisBackend(connector(redis_server.url)) as backend:
        served = (await backend.publish([Draft({"from": "the old master"})]))[0]
    with redis.Redis.from_url(redis_server.url) as client:
        _replace(client, served.id, {"from": "the new master"})
    async with RedisBackend(connector(redis_server.url)) as backend:
        subscription = backend.subscribe()
        later = (await backend.publish([Draft({"n": 1})]))[0]
        events = await _events(subscription, lambda got: later.id in _ids(got))
    assert not any(isinstance(event, Reset) for event in events), events
    assert [item.data for item in events if isinstance(item, Item)] == [
        {"from": "the new master"},
        {"n": 1},
    ]


async def _publish(backend: RedisBackend, data: object) -> Item:
    """Publish one item as a producer does: again after a 503 (its connection was cut)."""
    for _ in range(3):
        with contextlib.suppress(BackendUnavailable):
            return (await backend.publish([Draft(data)]))[0]
    raise AssertionError("three publishes in a row answered 503")


async def _events(subscription: Subscription, done: Callable[[list[Event]], bool]) -> list[Event]:
    """The subscription's events until ``done`` holds for those read so far."""
    got: list[Event] = []
    with anyio.fail_after(WITHIN):
        while not done(got):
            batch = await subscription.next_batch()
            assert batch is not None, "the subscription ended"
            got += batch
    return got


def _ids(events: list[Event]) -> list[StreamId]:
    return [event.id for event in events if isinstance(event, Item)]


def _replace(client: redis.Redis, id: StreamId, data: object) -> None:
    """Rewrite the log with another item under ``id``, as the new master would hold it."""
    entries: Any = client.xrange(LOG_STREAM)
    with client.pipeline(transaction=True) as rewrite:
        rewrite.delete(LOG_STREAM)
        for raw_id, fields in entries:
            if raw_id.decode() == str(id):
                fields = {b"d": orjson.dumps({**orjson.loads(fields[b"d"]), "data": data})}
            rewrite.xadd(LOG_STREAM, fields, id=raw_id)
        rewrite.execute()
