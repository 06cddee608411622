"""GET /stream: cached items in id order, one `live` event, then live items."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from tests.http.helpers import (
    events,
    item_ids,
    publish,
    publish_many,
    take,
    until_live,
)
from tests.support import RunningServer, run_server


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    # Every read is bounded: an event that never comes fails the test after 5 s.
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def test_stream_is_an_uncached_event_stream(client: httpx.Client) -> None:
    with connect_sse(client, "GET", "/stream") as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert "no-store" in source.response.headers["cache-control"]


def test_first_event_carries_the_retry_hint() -> None:
    with run_server(retry_ms=1234) as server, httpx.Client(base_url=server.url, timeout=5) as c:
        publish(c, server.auth, {"data": 1})
        with connect_sse(c, "GET", "/stream") as source:
            first, second = take(events(source.iter_sse()), 2)
            assert (first.event, first.retry) == ("item", 1234)
            assert (second.event, second.retry) == ("live", None)


def test_retry_hint_rides_on_live_when_nothing_is_cached(client: httpx.Client) -> None:
    with connect_sse(client, "GET", "/stream") as source:
        first = take(events(source.iter_sse()), 1)[0]
        assert (first.event, first.retry) == ("live", 2000)


def test_replay_then_live(server: RunningServer, client: httpx.Client) -> None:
    cached = [publish(client, server.auth, {"key": f"k{n}", "data": n}) for n in range(5)]
    with connect_sse(client, "GET", "/stream") as source:
        stream = events(source.iter_sse())
        replayed, live = until_live(stream)
        assert [(e.event, e.id, e.data) for e in replayed] == [
            ("item", item["id"], item) for item in cached
        ]
        assert live.data == {"cutoff": cached[-1]["id"], "replayed": 5}

        posted = publish(client, server.auth, {"key": "later", "data": "live"})
        (event,) = take(stream, 1)
        assert (event.event, event.id, event.data) == ("item", posted["id"], posted)


def test_live_cutoff_is_null_when_nothing_is_cached(client: httpx.Client) -> None:
    with connect_sse(client, "GET", "/stream") as source:
        replayed, live = until_live(events(source.iter_sse()))
        assert replayed == []
        assert live.data == {"cutoff": None, "replayed": 0}


def test_replay_holds_only_the_latest_item_per_key(
    server: RunningServer, client: httpx.Client
) -> None:
    publish(client, server.auth, {"key": "a", "data": "old"})
    b = publish(client, server.auth, {"key": "b", "data": "b"})
    a = publish(client, server.auth, {"key": "a", "data": "new"})
    with connect_sse(client, "GET", "/stream") as source:
        replayed, live = until_live(events(source.iter_sse()))
        assert [e.data for e in replayed] == [b, a]
        assert live.data == {"cutoff": a["id"], "replayed": 2}


def test_live_batch_arrives_whole_and_in_order(server: RunningServer, client: httpx.Client) -> None:
    with connect_sse(client, "GET", "/stream") as source:
        stream = events(source.iter_sse())
        until_live(stream)
        batch = publish_many(client, server.auth, 50)
        received = take(stream, 50)
        assert [e.data for e in received] == batch


def test_live_update_of_a_cached_key_is_streamed(
    server: RunningServer, client: httpx.Client
) -> None:
    publish(client, server.auth, {"key": "k", "data": 1})
    with connect_sse(client, "GET", "/stream") as source:
        stream = events(source.iter_sse())
        until_live(stream)
        newer = publish(client, server.auth, {"key": "k", "data": 2})
        assert take(stream, 1)[0].data == newer


def test_item_data_survives_the_stream_intact(server: RunningServer, client: httpx.Client) -> None:
    data = {"text": "line one\nline two\r\n\u2028end", "emoji": "🚀", "nested": [None, True, 1.5]}
    posted = publish(client, server.auth, {"key": "k\u00e9y", "data": data})
    with connect_sse(client, "GET", "/stream") as source:
        (event,) = take(events(source.iter_sse()), 1)
        assert event.data == posted
        assert event.data["data"] == data


def test_topic_filter_replays_and_streams_only_those_topics(
    server: RunningServer, client: httpx.Client
) -> None:
    posted = publish(client, server.auth, [{"topic": t, "data": 0} for t in "acbcaab"])
    wanted = [item["id"] for item in posted if item["topic"] in "ac"]
    with connect_sse(client, "GET", "/stream", params={"topic": ["a", "c"]}) as source:
        stream = events(source.iter_sse())
        replayed, _ = until_live(stream)
        assert item_ids(replayed) == wanted  # merged across the topics, in id order
        publish(client, server.auth, {"topic": "b", "data": 4})
        later = publish(client, server.auth, {"topic": "c", "data": 5})
        assert take(stream, 1)[0].data == later


def test_empty_topic_filter_counts_as_absent(server: RunningServer, client: httpx.Client) -> None:
    items = publish(client, server.auth, [{"topic": t, "data": 1} for t in "ab"])
    with connect_sse(client, "GET", "/stream", params={"topic": ""}) as source:
        replayed, _ = until_live(events(source.iter_sse()))
        assert item_ids(replayed) == [item["id"] for item in items]


def test_limit_ends_the_stream_after_n_replayed_items(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 5)]
    with connect_sse(client, "GET", "/stream", params={"limit": 3}) as source:
        received = list(events(source.iter_sse()))  # ends: the response completes
        assert [(e.event, e.id) for e in received] == [("item", i) for i in ids[:3]]
        assert source.response.is_stream_consumed


def test_limit_counts_items_not_the_live_event(server: RunningServer, client: httpx.Client) -> None:
    cached = [item["id"] for item in publish_many(client, server.auth, 2)]
    with connect_sse(client, "GET", "/stream", params={"limit": 3}) as source:
        stream = events(source.iter_sse())
        replayed, _ = until_live(stream)
        assert item_ids(replayed) == cached
        posted = [item["id"] for item in publish_many(client, server.auth, 2)]
        rest = list(stream)  # the third item, then the end of the response
        assert [(e.event, e.id) for e in rest] == [("item", posted[0])]


def test_limit_counts_items_not_the_reset_event(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 4)]
    unknown = "99999999999999-0"
    headers = {"Last-Event-ID": unknown}
    with connect_sse(client, "GET", "/stream", params={"limit": 2}, headers=headers) as source:
        received = list(events(source.iter_sse()))
        assert [e.event for e in received] == ["reset", "item", "item"]
        assert item_ids(received) == ids[:2]


def test_limit_counts_only_items_on_the_chosen_topics(
    server: RunningServer, client: httpx.Client
) -> None:
    params = {"topic": "a", "limit": 2}
    with connect_sse(client, "GET", "/stream", params=params) as source:
        stream = events(source.iter_sse())
        until_live(stream)
        publish(client, server.auth, [{"topic": "b", "data": n} for n in range(5)])
        wanted = publish(client, server.auth, [{"topic": "a", "data": n} for n in range(3)])
        rest = list(stream)
        assert item_ids(rest) == [item["id"] for item in wanted[:2]]


def test_idle_stream_receives_heartbeat_comments() -> None:
    with (
        run_server(heartbeat=0.2) as server,
        # A read that waits more than a second fails the test.
        httpx.Client(base_url=server.url, timeout=1.0) as client,
        client.stream("GET", "/stream") as response,
    ):
        deadline = time.monotonic() + 1.0
        comments: list[str] = []
        for line in response.iter_lines():
            assert time.monotonic() < deadline, f"heartbeats too slow: {comments}"
            if line.startswith(":"):
                comments.append(line)
                if len(comments) == 2:
                    break
        assert len(comments) == 2, "stream ended without heartbeats"
