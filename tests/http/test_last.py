"""`?last=N`: a stream replays only the newest N cached items of its topics (after `since`),
then goes live; `GET /items` lists those N. Items left out on purpose are no loss."""

from __future__ import annotations

import threading

import httpx
import pytest
from httpx_sse import connect_sse

from tests.http.helpers import (
    assert_problem,
    events,
    item_ids,
    publish,
    publish_many,
    replay,
    take,
    until_live,
)
from tests.support import RunningServer, run_server


def test_last_replays_the_newest_n_items_then_goes_live(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 5)]
    with connect_sse(client, "GET", "/stream", params={"last": 2}) as source:
        stream = events(source.iter_sse())
        replayed, live = until_live(stream)
        assert [(e.event, e.id) for e in replayed] == [("item", i) for i in ids[3:]]
        assert live.data == {"cutoff": ids[-1], "replayed": 2}
        posted = publish(client, server.auth, {"data": "live"})
        assert [(e.event, e.id) for e in take(stream, 1)] == [("item", posted["id"])]


def test_the_live_event_counts_the_items_replayed(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 3)]
    assert replay(client, {})[1].data == {"cutoff": ids[-1], "replayed": 3}
    assert replay(client, {"since": ids[0]})[1].data == {"cutoff": ids[-1], "replayed": 2}


def test_last_beyond_the_cache_replays_all_of_it(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 3)]
    replayed, live = replay(client, {"last": 10})
    assert item_ids(replayed) == ids
    assert live.data == {"cutoff": ids[-1], "replayed": 3}


def test_last_on_an_empty_cache_replays_nothing(client: httpx.Client) -> None:
    replayed, live = replay(client, {"last": 3})
    assert (replayed, live.data) == ([], {"cutoff": None, "replayed": 0})


def test_last_counts_only_the_streams_topics(server: RunningServer, client: httpx.Client) -> None:
    items = publish(
        client, server.auth, [{"topic": t, "data": n} for n, t in enumerate("abcabcab")]
    )
    on_a_or_c = [item["id"] for item in items if item["topic"] in "ac"]
    replayed, live = replay(client, {"topic": ["a", "c"], "last": 3})
    assert item_ids(replayed) == on_a_or_c[-3:]
    assert live.data == {"cutoff": items[-1]["id"], "replayed": 3}
    replayed, _ = replay(client, {"topic": "b", "last": 2})
    assert item_ids(replayed) == [items[4]["id"], items[7]["id"]]


def test_last_counts_the_items_of_the_topics_a_pattern_matches(
    server: RunningServer, client: httpx.Client
) -> None:
    topics = ["p.a", "q", "p.b", "p.a", "q", "p.c"]
    items = publish(client, server.auth, [{"topic": t, "data": n} for n, t in enumerate(topics)])
    on_p = [item["id"] for item in items if item["topic"].startswith("p.")]
    replayed, live = replay(client, {"topic": "p.*", "last": 3})
    assert item_ids(replayed) == on_p[-3:]
    assert live.data == {"cutoff": items[-1]["id"], "replayed": 3}
    listed = client.get("/items", params={"topic": "p.*", "last": 2}).json()
    assert [item["id"] for item in listed] == on_p[-2:]


def test_last_keeps_the_latest_item_per_key(server: RunningServer, client: httpx.Client) -> None:
    items = publish(client, server.auth, [{"key": k, "data": n} for n, k in enumerate("abab")])
    replayed, _ = replay(client, {"last": 1})
    assert item_ids(replayed) == [items[3]["id"]]
    replayed, _ = replay(client, {"last": 5})
    assert item_ids(replayed) == [items[2]["id"], items[3]["id"]]


def test_last_applies_after_since(server: RunningServer, client: httpx.Client) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 6)]
    assert item_ids(replay(client, {"since": ids[0], "last": 2})[0]) == ids[4:]
    assert item_ids(replay(client, {"since": ids[3], "last": 5})[0]) == ids[4:]
    assert item_ids(replay(client, {"since": "0-0", "last": 1})[0]) == ids[5:]


def test_a_resume_with_last_event_id_replays_everything_after_it_whatever_last_says(
    server: RunningServer, client: httpx.Client
) -> None:
    # EventSource reconnects with the URL it opened (`?last=2`) and Last-Event-ID: the
    # resume must not skip what was published while it was away.
    ids = [item["id"] for item in publish_many(client, server.auth, 6)]
    replayed, live = replay(client, {"last": 2}, last_event_id=ids[1])
    assert [(e.event, e.id) for e in replayed] == [("item", i) for i in ids[2:]]
    assert live.data == {"cutoff": ids[-1], "replayed": 4}


def test_items_left_out_on_purpose_bring_no_reset() -> None:
    with (
        run_server(cache_max_items=3) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        ids = [item["id"] for item in publish_many(client, server.auth, 5)]
        # ids[0] and ids[1] were evicted; ids[2] is cached but left out by `last=2`.
        replayed, _ = replay(client, {"since": ids[0], "last": 2})
        assert [(e.event, e.id) for e in replayed] == [("item", i) for i in ids[3:]]


def test_a_loss_inside_the_newest_n_still_brings_a_reset() -> None:
    with (
        run_server(cache_max_items=3) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        ids = [item["id"] for item in publish_many(client, server.auth, 5)]
        # All three cached items fit in `last=3`: ids[1], evicted, would have been due.
        replayed, live = replay(client, {"since": ids[0], "last": 3})
        assert live.data["replayed"] == 3
        reset, *rest = replayed
        assert (reset.event, reset.data) == (
            "reset",
            {"reason": "evicted", "requested": ids[0], "oldest": ids[2]},
        )
        assert item_ids(rest) == ids[2:]


def test_history_before_a_restart_left_out_on_purpose_brings_no_reset() -> None:
    with run_server() as old, httpx.Client(base_url=old.url, timeout=5) as client:
        issued = publish(client, old.auth, {"data": "before"})["id"]
    with run_server() as new, httpx.Client(base_url=new.url, timeout=5) as client:
        fresh = [item["id"] for item in publish_many(client, new.auth, 3)]
        replayed, _ = replay(client, {"since": issued, "last": 2})
        assert [(e.event, e.id) for e in replayed] == [("item", i) for i in fresh[1:]]
        replayed, _ = replay(client, {"since": issued, "last": 3})
        assert [e.event for e in replayed] == ["reset", "item", "item", "item"]
        assert replayed[0].data["reason"] == "restarted"


def test_limit_counts_the_items_of_the_window(server: RunningServer, client: httpx.Client) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 5)]
    with connect_sse(client, "GET", "/stream", params={"last": 3, "limit": 2}) as source:
        assert [(e.event, e.id) for e in events(source.iter_sse())] == [
            ("item", i) for i in ids[2:4]
        ]


def test_live_items_after_a_window_have_no_duplicate_and_no_gap(
    server: RunningServer, client: httpx.Client
) -> None:
    published = [item["id"] for item in publish_many(client, server.auth, 20)]
    stop = threading.Event()

    def produce() -> None:
        with httpx.Client(base_url=server.url, timeout=5) as producer:
            while not stop.is_set():
                published.extend(i["id"] for i in publish_many(producer, server.auth, 3))

    seen: list[tuple[str, list[str]]] = []
    thread = threading.Thread(target=produce)
    thread.start()
    try:
        for _ in range(5):
            with connect_sse(client, "GET", "/stream", params={"last": 4}) as source:
                stream = events(source.iter_sse())
                replayed, live = until_live(stream)
                assert len(replayed) == 4
                assert replayed[-1].id == live.data["cutoff"]
                seen.append((live.data["cutoff"], item_ids(take(stream, 30))))
    finally:
        stop.set()
        thread.join()
    for cutoff, live_ids in seen:
        after = published.index(cutoff) + 1
        assert live_ids == published[after : after + 30]


def test_items_with_last_lists_the_newest_n(server: RunningServer, client: httpx.Client) -> None:
    items = publish_many(client, server.auth, 6)
    assert client.get("/items", params={"last": 2}).json() == items[4:]
    assert client.get("/items", params={"last": 9}).json() == items
    assert client.get("/items", params={"last": 3, "since": items[4]["id"]}).json() == items[5:]
    # `limit` pages through the window, oldest first.
    assert client.get("/items", params={"last": 4, "limit": 3}).json() == items[2:5]


@pytest.mark.parametrize("path", ["/items", "/stream"])
@pytest.mark.parametrize("value", ["0", "-1", "two", "", "9223372036854775808"])
def test_a_bad_last_is_a_400(client: httpx.Client, path: str, value: str) -> None:
    body = assert_problem(client.get(path, params={"last": value}), 400)
    assert "last" in body["detail"]
