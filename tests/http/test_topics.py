"""GET /topics: one entry per topic with cached items or open streams, sorted, paged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.http.helpers import Event, assert_problem, events, publish, until_live
from tests.support import RunningServer


def _topics(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/topics", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    listed: list[dict[str, Any]] = response.json()
    return listed


def _open(stack: ExitStack, client: httpx.Client, *topics: str) -> Iterator[Event]:
    """Open a stream on ``topics`` (every topic when none) and read up to its `live`; keep
    what it returns (closing the iterator, even by garbage collection, closes the stream)."""
    source = stack.enter_context(
        connect_sse(client, "GET", "/stream", params=[("topic", t) for t in topics])
    )
    stream = events(source.iter_sse())
    until_live(stream)
    return stream


def test_an_empty_service_lists_no_topic(client: httpx.Client) -> None:
    assert _topics(client) == []


def test_each_cached_topic_has_its_items_bytes_and_newest_id(
    server: RunningServer, client: httpx.Client
) -> None:
    stored = publish(
        client,
        server.auth,
        [
            {"topic": "news", "key": "a", "data": 1},
            {"topic": "alerts", "data": "x"},
            {"topic": "news", "key": "b", "data": 2},
            {"topic": "news", "key": "a", "data": 3},  # replaces the first
        ],
    )
    cached = {item["id"]: item for item in client.get("/items").json()}
    listed = _topics(client)
    assert [entry["topic"] for entry in listed] == ["alerts", "news"]
    alerts, news = listed
    assert alerts == {
        "topic": "alerts",
        "items": 1,
        "bytes": alerts["bytes"],
        "newest": stored[1]["id"],
        "subscribers": 0,
    }
    assert (news["items"], news["newest"], news["subscribers"]) == (2, stored[3]["id"], 0)
    # bytes: the items' SSE frames, as the cache counts them (more than their JSON).
    json_bytes = sum(len(httpx.Response(200, json=cached[i["id"]]).content) for i in stored[2:])
    assert news["bytes"] > json_bytes


def test_subscribers_count_streams_by_name_by_pattern_and_on_every_topic(
    server: RunningServer, client: httpx.Client
) -> None:
    publish(client, server.auth, [{"topic": "prices.btc", "data": 1}, {"topic": "news", "data": 2}])
    with ExitStack() as stack:
        streams = [
            _open(stack, client, "prices.btc"),
            _open(stack, client, "prices.*"),
            _open(stack, client, "prices.btc", "prices.*"),  # one stream, counted once
            _open(stack, client),  # every topic
            _open(stack, client, "quiet"),  # no items: listed for its subscriber
        ]
        counts = {entry["topic"]: entry["subscribers"] for entry in _topics(client)}
        # The stream on every topic receives each of them.
        assert counts == {"news": 1, "prices.btc": 4, "quiet": 2}
        del streams
    # The streams closed: "quiet" has neither items nor subscribers any more.
    with httpx.Client(base_url=server.url, timeout=5) as fresh:
        for _ in range(100):
            listed = _topics(fresh)
            if all(entry["subscribers"] == 0 for entry in listed):
                break
    assert [(entry["topic"], entry["subscribers"]) for entry in listed] == [
        ("news", 0),
        ("prices.btc", 0),
    ]


def test_pages_follow_after_and_limit(server: RunningServer, client: httpx.Client) -> None:
    names = [f"t{n:02}" for n in range(25)]
    publish(client, server.auth, [{"topic": name, "data": 0} for name in reversed(names)])
    seen: list[str] = []
    after = ""
    while True:
        page = _topics(client, after=after, limit=10) if after else _topics(client, limit=10)
        seen += [entry["topic"] for entry in page]
        if len(page) < 10:
            break
        after = page[-1]["topic"]
    assert seen == names


def test_topic_filters_names_and_patterns(server: RunningServer, client: httpx.Client) -> None:
    publish(
        client,
        server.auth,
        [{"topic": name, "data": 0} for name in ["a.x", "b", "b.x", "c", "prices.btc", "x.b"]],
    )
    params = {"topic": ["b.*", "c", "*.x", "missing"]}
    listed = client.get("/topics", params=params).json()
    assert [entry["topic"] for entry in listed] == ["a.x", "b.x", "c"]


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
def test_a_bad_limit_is_refused(client: httpx.Client, limit: str) -> None:
    assert_problem(client.get("/topics", params={"limit": limit}), 400)
