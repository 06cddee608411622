"""Topic patterns on reads: a `topic` holding `*` selects every topic it matches, cached or
published later; `*` is reserved in the topics items are published to."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from tests.http.helpers import assert_problem, events, item_ids, publish, take, until_live
from tests.support import RunningServer, run_server


@pytest.fixture
def server() -> Iterator[RunningServer]:
    # No heartbeat round within a test: a live item reaches a stream only through the
    # fan-out round of its publish, which must find the streams on matching patterns.
    with run_server(heartbeat=600) as server:
        yield server


def _seed(client: httpx.Client, server: RunningServer) -> list[dict[str, object]]:
    stored: list[dict[str, object]] = publish(
        client,
        server.auth,
        [
            {"topic": "prices.btc", "key": "k", "data": 1},
            {"topic": "news", "key": "k", "data": 2},
            {"topic": "prices.eth", "key": "k", "data": 3},
            {"topic": "prices", "key": "k", "data": 4},
            {"topic": "xprices.eth", "key": "k", "data": 5},
        ],
    )
    return stored


def test_a_pattern_replays_every_matching_topic_in_id_order(
    server: RunningServer, client: httpx.Client
) -> None:
    stored = _seed(client, server)
    with connect_sse(client, "GET", "/stream", params={"topic": "prices.*"}) as source:
        replayed, _live = until_live(events(source.iter_sse()))
    assert item_ids(replayed) == [stored[0]["id"], stored[2]["id"]]


def test_a_pattern_follows_topics_that_appear_later(
    server: RunningServer, client: httpx.Client
) -> None:
    with connect_sse(client, "GET", "/stream", params={"topic": "prices.*"}) as source:
        stream = events(source.iter_sse())
        until_live(stream)
        publish(client, server.auth, {"topic": "news", "data": "not this"})
        publish(client, server.auth, {"topic": "prices", "data": "nor this"})
        fresh = publish(client, server.auth, {"topic": "prices.sol", "data": "new topic"})
        (event,) = take(stream, 1)
    assert (event.event, event.data) == ("item", fresh)


def test_names_and_patterns_mix_on_one_stream(server: RunningServer, client: httpx.Client) -> None:
    stored = _seed(client, server)
    params = [("topic", "news"), ("topic", "*.eth")]
    with connect_sse(client, "GET", "/stream", params=params) as source:
        stream = events(source.iter_sse())
        replayed, _live = until_live(stream)
        assert item_ids(replayed) == [stored[1]["id"], stored[2]["id"], stored[4]["id"]]
        live = publish(client, server.auth, [{"topic": "a.eth", "data": 0}, {"data": 1}])
        (event,) = take(stream, 1)
    assert event.data == live[0]


def test_get_items_takes_a_pattern(server: RunningServer, client: httpx.Client) -> None:
    stored = _seed(client, server)
    response = client.get("/items", params={"topic": "*eth"})
    assert response.status_code == 200
    assert response.json() == [stored[2], stored[4]]


def test_a_stream_on_a_name_with_its_own_pattern_gets_each_item_once(
    server: RunningServer, client: httpx.Client
) -> None:
    params = [("topic", "prices.btc"), ("topic", "prices.*")]
    with connect_sse(client, "GET", "/stream", params=params) as source:
        stream = events(source.iter_sse())
        until_live(stream)
        first = publish(client, server.auth, {"topic": "prices.btc", "data": 1})
        second = publish(client, server.auth, {"topic": "prices.eth", "data": 2})
        received = take(stream, 2)
    assert [event.data for event in received] == [first, second]


def test_publishing_to_a_topic_with_a_star_is_refused_naming_the_item(
    server: RunningServer, client: httpx.Client
) -> None:
    response = client.post(
        "/items",
        json=[{"topic": "fine", "data": 1}, {"topic": "prices.*", "data": 2}],
        headers=server.auth,
    )
    problem = assert_problem(response, 422)
    assert [error["loc"] for error in problem["errors"]] == [["body", 1, "topic"]]
    assert "'*'" in problem["errors"][0]["msg"]
    assert client.get("/items").json() == []


def test_reading_one_item_by_key_takes_no_pattern(client: httpx.Client) -> None:
    problem = assert_problem(client.get("/items/k", params={"topic": "prices.*"}), 400)
    assert "pattern" in problem["detail"]
