"""Two instances on one Redis: a stream on a pattern at one instance follows the matching
topics published at the other, and each instance lists the shared log's topics."""

from __future__ import annotations

import httpx
from httpx_sse import connect_sse

from tests.http.helpers import events, item_ids, take, until_live
from tests.redis_support import RedisProcess
from tests.support import run_server


def test_a_pattern_stream_follows_topics_published_at_another_instance(
    redis_server: RedisProcess,
) -> None:
    with (
        run_server(backend=redis_server.url, heartbeat=600) as a,
        run_server(backend=redis_server.url, heartbeat=600) as b,
        httpx.Client(base_url=a.url, timeout=5) as at_a,
        httpx.Client(base_url=b.url, timeout=5) as at_b,
    ):
        # Published at b, so b's replay holds it (an instance reads its own writes).
        first = at_b.post("/items", json={"topic": "prices.btc", "data": 1}, headers=b.auth)
        first = first.json()
        with connect_sse(at_b, "GET", "/stream", params={"topic": "prices.*"}) as source:
            stream = events(source.iter_sse())
            replayed, _live = until_live(stream)
            assert item_ids(replayed) == [first["id"]]
            at_a.post("/items", json={"topic": "news", "data": 2}, headers=a.auth)
            later = at_a.post(
                "/items", json={"topic": "prices.new", "data": 3}, headers=a.auth
            ).json()
            (event,) = take(stream, 1)
            assert event.data == later
            listed = at_b.get("/topics").json()
            assert [(t["topic"], t["items"], t["subscribers"]) for t in listed] == [
                ("news", 1, 0),
                ("prices.btc", 1, 1),
                ("prices.new", 1, 1),
            ]
            # Subscribers are each instance's own streams.
            assert {t["subscribers"] for t in at_a.get("/topics").json()} == {0}
