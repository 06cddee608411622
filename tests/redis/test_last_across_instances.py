"""`?last=N` on an instance of a shared Redis log: one that joined after the items were
published (its cache loaded from the log) replays the same newest N as the one that
published them, and resumes exactly after an id the other one issued."""

from __future__ import annotations

import httpx
from httpx_sse import connect_sse

from tests.http.helpers import events, item_ids, publish, take, until_live
from tests.redis_support import RedisProcess
from tests.support import run_server


def test_a_later_instance_replays_the_same_newest_items(redis_server: RedisProcess) -> None:
    shared = {"backend": redis_server.url}
    with run_server(**shared) as first, httpx.Client(base_url=first.url, timeout=5) as client:
        posted = publish(
            client, first.auth, [{"topic": t, "data": n} for n, t in enumerate("abab")]
        )
        posted += publish(client, first.auth, [{"topic": "a", "key": "k", "data": "x"}])
        with (
            run_server(**shared) as later,
            httpx.Client(base_url=later.url, timeout=5) as reader,
        ):
            for server_client in (client, reader):
                with connect_sse(
                    server_client, "GET", "/stream", params={"topic": "a", "last": 2}
                ) as source:
                    stream = events(source.iter_sse())
                    replayed, live = until_live(stream)
                    assert item_ids(replayed) == [posted[2]["id"], posted[4]["id"]]
                    assert live.data == {"cutoff": posted[-1]["id"], "replayed": 2}
                listed = server_client.get("/items", params={"last": 3}).json()
                assert listed == posted[2:]

            # A reconnect to the other instance, with an id the first one issued and the
            # same URL: it resumes exactly, whatever `last` says.
            headers = {"Last-Event-ID": posted[0]["id"]}
            with connect_sse(
                reader, "GET", "/stream", params={"last": 1}, headers=headers
            ) as source:
                stream = events(source.iter_sse())
                replayed, live = until_live(stream)
                assert item_ids(replayed) == [item["id"] for item in posted[1:]]
                fresh = publish(client, first.auth, {"data": "live"})
                assert item_ids(take(stream, 1)) == [fresh["id"]]
