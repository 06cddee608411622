"""Loss records stay cheap at any number of topics: publishing to ever new topics, each
item pushing an older one out of the cache (a loss on its topic), costs the same per item
past the loss log's 100,000 tracked topics as before it."""

from __future__ import annotations

import statistics
import time

import httpx
import orjson
import pytest

from tests.support import run_server

BATCH = 1000
BATCHES = 250  # 250,000 topics: the last 50 batches are far past the 100,000 tracked


@pytest.fixture(scope="module", autouse=True)
def backend() -> str:
    """The loss log is the core's cache's, the same under both backends: memory is enough."""
    return "memory"


def test_publishing_to_ever_new_topics_does_not_slow_down() -> None:
    # A cache of 1,000 items: every item published evicts one, a loss on a topic of its own.
    seconds: list[float] = []
    with (
        run_server(backend="memory", cache_max_items=BATCH) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        headers = {**server.auth, "Content-Type": "application/json"}
        for first in range(0, BATCHES * BATCH, BATCH):
            body = orjson.dumps([{"topic": f"t{first + n}", "data": n} for n in range(BATCH)])
            start = time.perf_counter()
            response = client.post("/items", content=body, headers=headers)
            seconds.append(time.perf_counter() - start)
            assert response.status_code == 201, response.text
        stats = client.get("/stats").json()
    assert stats["cache_items"] == BATCH
    early, late = statistics.median(seconds[:50]), statistics.median(seconds[-50:])
    # Per batch, recording the losses cost ~3x more past 200,000 topics when it scanned.
    assert late < 2 * early, f"median batch: {early * 1000:.1f} ms early, {late * 1000:.1f} ms late"
