"""Resuming a stream: `Last-Event-ID` (or `since`) continues exactly after that id, and an
in-band `reset` says so when items the client needed are gone."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.http.helpers import (
    events,
    item_ids,
    publish,
    publish_many,
    replay,
    take,
    until_live,
)
from tests.support import RunningServer, run_server

FUTURE_ID = "99999999999999-0"


def test_reconnect_with_last_event_id_resumes_exactly_after_it(
    server: RunningServer, client: httpx.Client
) -> None:
    first = [item["id"] for item in publish_many(client, server.auth, 5)]
    with connect_sse(client, "GET", "/stream") as source:
        stream = events(source.iter_sse())
        seen = take(stream, 3)
    last_seen = seen[-1].id
    assert item_ids(seen) == first[:3]
    # Published while the client was away:
    more = [item["id"] for item in publish_many(client, server.auth, 4)]

    with connect_sse(client, "GET", "/stream", headers={"Last-Event-ID": last_seen}) as source:
        stream = events(source.iter_sse())
        replayed, live = until_live(stream)
        assert [e.event for e in replayed] == ["item"] * 6  # no reset: nothing was lost
        assert item_ids(replayed) == first[3:] + more
        assert live.data == {"cutoff": more[-1], "replayed": 6}
        posted = publish(client, server.auth, {"data": "live"})
        assert take(stream, 1)[0].id == posted["id"]


def test_since_resumes_exactly_after_it(server: RunningServer, client: httpx.Client) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 5)]
    replayed, _ = replay(client, params={"since": ids[1]})
    assert [(e.event, e.id) for e in replayed] == [("item", i) for i in ids[2:]]


def test_last_event_id_wins_over_since(server: RunningServer, client: httpx.Client) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 6)]
    replayed, _ = replay(client, last_event_id=ids[1], params={"since": ids[3]})
    assert item_ids(replayed) == ids[2:]


def test_empty_since_counts_as_absent(server: RunningServer, client: httpx.Client) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 3)]
    replayed, _ = replay(client, params={"since": ""})
    assert [(e.event, e.id) for e in replayed] == [("item", i) for i in ids]


def test_empty_last_event_id_counts_as_absent(server: RunningServer, client: httpx.Client) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 4)]
    assert replay(client, last_event_id="")[0] == replay(client)[0]
    # Absent, so `since` applies.
    replayed, _ = replay(client, last_event_id="", params={"since": ids[1]})
    assert [(e.event, e.id) for e in replayed] == [("item", i) for i in ids[2:]]


def test_resuming_from_a_cached_id_sends_no_reset(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 9)]
    replayed, _ = replay(client, last_event_id=ids[4])
    assert [e.event for e in replayed] == ["item"] * 4
    assert item_ids(replayed) == ids[5:]


def test_resuming_from_the_newest_id_replays_nothing(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 3)]
    replayed, live = replay(client, last_event_id=ids[-1])
    assert replayed == []
    assert live.data == {"cutoff": ids[-1], "replayed": 0}


def test_resuming_past_a_replaced_item_sends_no_reset(
    server: RunningServer, client: httpx.Client
) -> None:
    # Replacing a key's item is not a loss: the newer item is what the client needs.
    start = publish(client, server.auth, {"key": "start", "data": 0})
    publish(client, server.auth, {"key": "k", "data": 1})
    newer = publish(client, server.auth, {"key": "k", "data": 2})
    replayed, _ = replay(client, last_event_id=start["id"])
    assert [(e.event, e.id) for e in replayed] == [("item", newer["id"])]


def test_resuming_on_fresh_history_sends_reset_restarted() -> None:
    # Fresh history: the in-memory log after a restart; with Redis, an instance on a new
    # log (each `run_server` gets a key prefix of its own).
    with run_server() as old, httpx.Client(base_url=old.url, timeout=5) as client:
        issued = [item["id"] for item in publish_many(client, old.auth, 3)]

    with run_server() as new, httpx.Client(base_url=new.url, timeout=5) as client:
        fresh = publish(client, new.auth, {"data": "after restart"})
        replayed, live = replay(client, last_event_id=issued[1])
        reset, *rest = replayed
        assert reset.event == "reset"
        assert reset.data == {"reason": "restarted", "requested": issued[1], "oldest": fresh["id"]}
        # Then everything the new server has cached.
        assert [(e.event, e.id) for e in rest] == [("item", fresh["id"])]
        assert live.data == {"cutoff": fresh["id"], "replayed": 1}


def test_resuming_on_fresh_history_with_nothing_cached_sends_reset_then_live() -> None:
    with run_server() as old, httpx.Client(base_url=old.url, timeout=5) as client:
        issued = publish(client, old.auth, {"data": 1})["id"]

    with run_server() as new, httpx.Client(base_url=new.url, timeout=5) as client:
        replayed, live = replay(client, last_event_id=issued)
        assert [(e.event, e.data) for e in replayed] == [
            ("reset", {"reason": "restarted", "requested": issued, "oldest": None})
        ]
        assert live.data == {"cutoff": None, "replayed": 0}


def test_resuming_after_a_server_restart(backend: str) -> None:
    """The in-memory log starts over with its process: resuming gets `reset` "restarted"
    and the new history. A Redis log outlives its instances: an instance restarted on the
    same log resumes exactly after the id, with no reset and no gap."""
    same_log = {"redis_prefix": f"test-{secrets.token_hex(6)}"}  # unused by "memory"
    with run_server(**same_log) as old, httpx.Client(base_url=old.url, timeout=5) as client:
        issued = [item["id"] for item in publish_many(client, old.auth, 3)]

    with run_server(**same_log) as new, httpx.Client(base_url=new.url, timeout=5) as client:
        fresh = publish(client, new.auth, {"data": "after restart"})
        headers = {"Last-Event-ID": issued[1]}
        with connect_sse(client, "GET", "/stream", headers=headers) as source:
            stream = events(source.iter_sse())
            replayed, live = until_live(stream)
            if backend == "memory":
                reset, *rest = replayed
                assert reset.event == "reset"
                assert reset.data == {
                    "reason": "restarted",
                    "requested": issued[1],
                    "oldest": fresh["id"],
                }
                # Then everything the new server has cached.
                assert [(e.event, e.id) for e in rest] == [("item", fresh["id"])]
            else:
                # Exactly what came after the id, across the restart.
                assert [(e.event, e.id) for e in replayed] == [
                    ("item", issued[2]),
                    ("item", fresh["id"]),
                ]
            assert live.data == {"cutoff": fresh["id"], "replayed": len(item_ids(replayed))}
            posted = publish(client, new.auth, {"data": "live"})
            assert [(e.event, e.id) for e in take(stream, 1)] == [("item", posted["id"])]


def test_a_later_instance_replays_the_same_view_as_one_that_saw_every_write(
    backend: str,
) -> None:
    """Instances of one Redis log hold the same latest-per-key view, evictions included,
    whether they saw every write or joined later; an in-memory server has only its own."""
    same_log = {"redis_prefix": f"test-{secrets.token_hex(6)}", "cache_max_items": 4}
    with (
        run_server(**same_log) as first,
        httpx.Client(base_url=first.url, timeout=5) as client,
    ):
        posted = publish(
            client,
            first.auth,
            [
                {"key": "a", "topic": "t", "data": 1},
                {"key": "b", "topic": "t", "data": 2},
                {"key": "a", "topic": "u", "data": 3},
                {"data": 4},  # keyed by its id
                {"key": "a", "topic": "t", "data": 5},  # replaces the first
                {"key": "c", "topic": "u", "data": 6},
                {"key": "b", "topic": "t", "data": 7},  # replaces the second
                {"key": "d", "topic": "t", "data": 8},
            ],
        )
        # Six keys, four kept: the latest per key, then the newest four in write order.
        # (Evicted: (u, a) and the keyless item; replaced: the first two.)
        expected = [posted[n] for n in (4, 5, 6, 7)]
        views = []
        with run_server(**same_log) as later:
            for server in (first, later):
                with httpx.Client(base_url=server.url, timeout=5) as reader:
                    views.append(
                        (
                            reader.get("/items").json(),
                            replay(reader),
                            replay(reader, last_event_id=posted[0]["id"]),
                        )
                    )

    (listed, (replayed, live), (resumed, _)) = views[0]
    assert listed == expected
    assert [e.data for e in replayed] == expected
    assert live.data == {"cutoff": posted[-1]["id"], "replayed": 4}
    reset = {"reason": "evicted", "requested": posted[0]["id"], "oldest": expected[0]["id"]}
    assert [(e.event, e.data) for e in resumed] == [
        ("reset", reset),
        *[("item", item) for item in expected],
    ]
    if backend == "redis":
        assert views[1] == views[0]
    else:
        (listed, (replayed, live), (resumed, _)) = views[1]
        assert (listed, replayed, live.data) == ([], [], {"cutoff": None, "replayed": 0})
        assert [e.data["reason"] for e in resumed] == ["restarted"]


def test_resuming_from_an_id_never_issued_sends_reset_then_everything_cached(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 3)]
    replayed, live = replay(client, last_event_id=FUTURE_ID)
    reset, *rest = replayed
    assert reset.event == "reset"
    assert reset.data == {"reason": "unknown_id", "requested": FUTURE_ID, "oldest": ids[0]}
    assert [(e.event, e.id) for e in rest] == [("item", i) for i in ids]
    assert live.data == {"cutoff": ids[-1], "replayed": 3}


def test_resuming_from_before_an_expired_item_sends_reset_expired() -> None:
    with run_server(ttl_min=0.05) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        before = publish(client, server.auth, {"key": "before", "data": 0})
        short = publish(client, server.auth, {"key": "short", "data": 1, "ttl": 0.1})
        after = publish(client, server.auth, {"key": "after", "data": 2})
        _wait_until_gone(client, short)

        replayed, live = replay(client, last_event_id=before["id"])
        reset, *rest = replayed
        assert reset.event == "reset"
        assert reset.data == {
            "reason": "expired",
            "requested": before["id"],
            "oldest": before["id"],
        }
        assert [(e.event, e.id) for e in rest] == [("item", after["id"])]
        assert live.data == {"cutoff": after["id"], "replayed": 1}


def test_resuming_from_after_an_expired_item_sends_no_reset() -> None:
    with run_server(ttl_min=0.05) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        short = publish(client, server.auth, {"key": "short", "data": 1, "ttl": 0.1})
        after = publish(client, server.auth, {"key": "after", "data": 2})
        latest = publish(client, server.auth, {"key": "latest", "data": 3})
        _wait_until_gone(client, short)

        replayed, _ = replay(client, last_event_id=after["id"])
        assert [(e.event, e.id) for e in replayed] == [("item", latest["id"])]


def test_resuming_from_before_an_evicted_item_sends_reset_evicted() -> None:
    with (
        run_server(cache_max_items=3) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        ids = [item["id"] for item in publish_many(client, server.auth, 5)]
        # The cache holds the newest three; ids[0] and ids[1] were evicted.
        replayed, _ = replay(client, last_event_id=ids[0])
        reset, *rest = replayed
        assert reset.event == "reset"
        assert reset.data == {"reason": "evicted", "requested": ids[0], "oldest": ids[2]}
        assert item_ids(rest) == ids[2:]


def test_losses_on_other_topics_do_not_reset_a_filtered_stream() -> None:
    with (
        run_server(cache_max_items=3) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        b = publish(client, server.auth, [{"topic": "b", "data": n} for n in range(2)])
        a = publish(client, server.auth, [{"topic": "a", "data": n} for n in range(3)])
        # Both "b" items were evicted; nothing on "a" was lost.
        replayed, _ = replay(client, last_event_id=b[0]["id"], params={"topic": "a"})
        assert [(e.event, e.id) for e in replayed] == [("item", item["id"]) for item in a]


def test_topic_filter_applies_to_resumed_streams(
    server: RunningServer, client: httpx.Client
) -> None:
    items = publish(client, server.auth, [{"topic": t, "data": n} for n, t in enumerate("abab")])
    replayed, _ = replay(client, last_event_id=items[0]["id"], params={"topic": "a"})
    assert [(e.event, e.id) for e in replayed] == [("item", items[2]["id"])]


def _wait_until_gone(client: httpx.Client, item: dict[str, Any], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/items/{item['key']}").status_code != 404:
        assert time.monotonic() < deadline, f"{item['key']} did not expire within {timeout} s"
        time.sleep(0.02)


@pytest.mark.parametrize("how", ["since", "Last-Event-ID"])
def test_resuming_from_0_0_replays_everything_without_a_reset(
    server: RunningServer, client: httpx.Client, how: str
) -> None:
    # "0-0" comes before every id: it means "from the start", whatever the log's age.
    published = publish_many(client, server.auth, 3)
    if how == "since":
        replayed, _live = replay(client, params={"since": "0-0"})
    else:
        replayed, _live = replay(client, last_event_id="0-0")
    assert [e.event for e in replayed] == ["item"] * 3
    assert item_ids(replayed) == [item["id"] for item in published]
