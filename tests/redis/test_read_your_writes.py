"""Read-your-writes on one instance of the Redis backend: a publish is answered as soon as
Redis has it, and a read on the same instance afterwards (a GET, or a stream opened then)
waits until the instance's tail has applied it."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest
from httpx_sse import connect_sse

from streaming import Draft
from streaming.backends.redis import RedisBackend, connector
from tests.http.helpers import events, until_live
from tests.redis_support import RedisProcess
from tests.support import RunningServer, run_server

BATCH = [{"key": f"k{n}", "data": "x" * 1000} for n in range(1000)]
ROUNDS = 10


@pytest.fixture
def server(redis_server: RedisProcess) -> Iterator[RunningServer]:
    with run_server(backend=redis_server.url) as running:
        yield running


def test_a_get_after_a_201_sees_the_items(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=10) as client:
        for n in range(ROUNDS):
            batch = [{**item, "topic": f"t{n}"} for item in BATCH]
            assert client.post("/items", json=batch).status_code == 201
            last = client.get(f"/items/k999?topic=t{n}")
            assert last.status_code == 200, f"round {n}: {last.text}"
            assert len(client.get("/items", params={"topic": f"t{n}"}).json()) == len(BATCH)


def test_a_stream_opened_after_a_201_replays_the_items(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=10) as client:
        for n in range(ROUNDS):
            batch = [{**item, "topic": f"t{n}"} for item in BATCH]
            assert client.post("/items", json=batch).status_code == 201
            with connect_sse(client, "GET", f"/stream?topic=t{n}") as source:
                replayed, _live = until_live(events(source.iter_sse()))
            assert len(replayed) == len(BATCH), f"round {n}"


async def test_the_tail_delivers_the_item_its_publish_built_without_building_it_again(
    redis_server: RedisProcess,
) -> None:
    # Encode once: the item a publish answered with is the one subscribers get, not a
    # copy the tail parsed and encoded again when it read the entry back.
    async with RedisBackend(connector(redis_server.url)) as backend:
        subscription = backend.subscribe()
        while subscription.poll():
            pass
        [published] = await backend.publish([Draft({"n": 1})])
        with anyio.fail_after(5):
            delivered = await subscription.next_batch()
    assert delivered is not None
    assert [event is published for event in delivered] == [True]
