"""The client and `tailcast tail` with topic patterns, and the client's `topics()` call."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tailcast import LiveEvent, StoredItem, TailcastClient, TopicInfo
from tests.client.test_cli import tailcast
from tests.support import RunningServer


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[TailcastClient]:
    async with TailcastClient(server.url, token=server.token) as client:
        yield client


async def test_a_subscription_takes_a_pattern(client: TailcastClient) -> None:
    stored = await client.publish_many(
        [{"topic": topic, "data": n} for n, topic in enumerate(["p.a", "q", "p.b", "p"])]
    )
    events = [event async for event in client.subscribe(topics="p.*", limit=2)]
    assert events == [stored[0], stored[2]]


async def test_a_pattern_subscription_follows_new_topics(client: TailcastClient) -> None:
    async with client.subscribe(topics=["p.*"], limit=1) as events:
        async for event in events:
            if isinstance(event, LiveEvent):
                await client.publish(0, topic="q")
                fresh = await client.publish(1, topic="p.new")
            else:
                assert isinstance(event, StoredItem)
                assert event == fresh


async def test_topics_lists_pages_of_topics(client: TailcastClient) -> None:
    stored = await client.publish_many([{"topic": t, "data": 0} for t in ["c", "a.1", "b", "a.2"]])
    first = await client.topics(limit=2)
    assert first == [
        TopicInfo("a.1", 1, first[0].bytes, stored[1].id, 0),
        TopicInfo("a.2", 1, first[1].bytes, stored[3].id, 0),
    ]
    assert first[0].bytes > 0
    rest = await client.topics(after="a.2")
    assert [info.topic for info in rest] == ["b", "c"]
    assert [info.topic for info in await client.topics("a.*")] == ["a.1", "a.2"]


def test_tail_takes_a_pattern(server: RunningServer) -> None:
    env = {**os.environ, "TAILCAST_URL": server.url, "TAILCAST_PUBLISH_TOKEN": server.token}
    for topic in ("news", "prices.btc", "prices", "prices.eth"):
        assert tailcast("publish", "--topic", topic, '"x"', env=env).returncode == 0
    result = tailcast("tail", "--topic", "prices.*", "--limit", "2", env=env)
    assert result.returncode == 0, result.stderr
    topics = [line.split('"topic":"')[1].split('"')[0] for line in result.stdout.splitlines()]
    assert topics == ["prices.btc", "prices.eth"]
