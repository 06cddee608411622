"""`/stats` answers the service's figures as one small JSON object, open to anyone, and its
counters move as items are published and delivered."""

from __future__ import annotations

import httpx
from httpx_sse import connect_sse

from tests.http.helpers import events, publish_many, take, until_live
from tests.support import RunningServer

RESET_REASONS = {"expired", "evicted", "restarted", "unknown_id"}


def test_stats_has_every_field_with_its_type(backend: str, client: httpx.Client) -> None:
    response = client.get("/stats")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    stats = response.json()
    assert set(stats) == {
        "time",
        "uptime",
        "backend",
        "items_published",
        "items_delivered",
        "subscribers",
        "cache_items",
        "cache_bytes",
        "resets",
        "catchups",
    }
    assert stats["backend"] == backend
    assert isinstance(stats["time"], int)
    assert isinstance(stats["uptime"], float)
    assert stats["uptime"] >= 0
    for name in ("items_published", "items_delivered", "subscribers", "cache_items"):
        assert stats[name] == 0, name
    assert isinstance(stats["cache_bytes"], int)
    assert stats["resets"] == dict.fromkeys(RESET_REASONS, 0)
    assert stats["catchups"] == 0


def test_stats_counters_move_with_publishes_and_deliveries(
    server: RunningServer, client: httpx.Client
) -> None:
    before = client.get("/stats").json()
    with connect_sse(client, "GET", "/stream") as source:
        stream = events(source.iter_sse())
        until_live(stream)
        publish_many(client, server.auth, 3)
        take(stream, 3)
        during = client.get("/stats").json()

    assert during["items_published"] == 3
    assert during["items_delivered"] == 3
    assert during["subscribers"] == 1
    assert during["cache_items"] == 3
    assert during["cache_bytes"] > before["cache_bytes"]
    assert during["time"] >= before["time"]
    assert during["uptime"] >= before["uptime"]
