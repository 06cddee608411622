"""A subscriber across a server restart: every item exactly once, or a reset where the
server really lost items."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from tailcast import Event, StoredItem, TailcastClient
from tests.client.helpers import ServerSlot, free_port, items, lives, resets, wait_until
from tests.redis_support import RedisProcess

FAST = {"retry_ms": 50, "shutdown_grace": 1}
"""Reconnect quickly, and shut down promptly."""


@pytest.fixture
async def slot() -> AsyncIterator[ServerSlot]:
    slot = ServerSlot()
    try:
        yield slot
    finally:
        await slot.stop()


async def _publish(url: str, token: str, values: range) -> list[StoredItem]:
    async with TailcastClient(url, token=token) as client:
        return await client.publish_many([{"data": n} for n in values])


def _assert_each_once_in_order(events: list[Event], values: range) -> None:
    delivered = items(events)
    assert [item.data for item in delivered] == list(values)
    keys = [item.sort_key for item in delivered]
    assert keys == sorted(set(keys))  # strictly increasing: no id twice


async def test_memory_restart_yields_a_reset_then_the_new_items_once(slot: ServerSlot) -> None:
    port = free_port()
    first = await slot.start(port=port, **FAST)
    before = await _publish(first.url, first.token, range(5))
    events: list[Event] = []
    with anyio.fail_after(30):
        async with (
            TailcastClient(first.url, max_backoff=0.5) as client,
            client.subscribe() as subscription,
            anyio.create_task_group() as tasks,
        ):

            async def read() -> None:
                async for event in subscription:
                    events.append(event)
                    if isinstance(event, StoredItem) and event.data == 9:
                        return

            tasks.start_soon(read)
            await wait_until(lambda: subscription.caught_up, what="caught up")
            await slot.stop()
            second = await slot.start(port=port, **FAST)  # same port: an empty history
            await wait_until(lambda: bool(resets(events)), what="a reset after the restart")
            await _publish(second.url, second.token, range(5, 10))
    _assert_each_once_in_order(events, range(10))
    assert [(r.reason, r.requested) for r in resets(events)] == [("restarted", before[-1].id)]
    assert len(lives(events)) == 2  # one per connection
    assert subscription.reconnects >= 1


async def test_redis_restart_resumes_with_every_item_exactly_once(
    slot: ServerSlot, redis_server: RedisProcess
) -> None:
    shared = {"backend": redis_server.url, "redis_prefix": "x", **FAST}
    port = free_port()
    first = await slot.start(port=port, **shared)
    other = ServerSlot()  # publishes while nothing listens on the subscriber's port
    events: list[Event] = []
    try:
        await _publish(first.url, first.token, range(5))
        with anyio.fail_after(30):
            async with (
                TailcastClient(first.url, max_backoff=0.5) as client,
                client.subscribe() as subscription,
                anyio.create_task_group() as tasks,
            ):

                async def read() -> None:
                    async for event in subscription:
                        events.append(event)
                        if isinstance(event, StoredItem) and event.data == 14:
                            return

                tasks.start_soon(read)
                await wait_until(lambda: subscription.caught_up, what="caught up")
                await slot.stop()
                meanwhile = await other.start(**shared)
                await _publish(meanwhile.url, meanwhile.token, range(5, 10))
                second = await slot.start(port=port, **shared)
                await wait_until(lambda: len(items(events)) == 10, what="the missed items")
                await _publish(second.url, second.token, range(10, 15))
    finally:
        await other.stop()
    _assert_each_once_in_order(events, range(15))
    assert resets(events) == []
    assert subscription.reconnects >= 1
