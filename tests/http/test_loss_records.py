"""Loss records stay cheap at any number of topics: publishing to ever new topics, each
item pushing an older one out of the cache (a loss on its topic), costs the same per item
past the loss log's 100,000 tracked topics as before it."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import run_server

BATCH = 1000
BATCHES = 175
MEASURED = 50  # batches: the first ones, and the last ones (125,000-175,000 topics)


@pytest.fixture(scope="module", autouse=True)
def backend() -> str:
    """The loss log is the core's cache's, the same under both backends: memory is enough."""
    return "memory"


def cpu_seconds(thread_id: int) -> float:
    """CPU time a thread of this process has used (Linux): steadier than wall time on a
    machine that runs other work, and only the server's own (its thread does everything)."""
    stat = Path(f"/proc/self/task/{thread_id}/schedstat").read_text()
    return int(stat.split()[0]) / 1e9


def test_publishing_to_ever_new_topics_does_not_slow_down() -> None:
    # A cache of 1,000 items: every item published evicts one, a loss on a topic of its own.
    seconds: list[float] = []
    with (
        run_server(backend="memory", cache_max_items=BATCH) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        thread = server.thread.native_id
        assert thread is not None
        headers = {**server.auth, "Content-Type": "application/json"}
        for first in range(0, BATCHES * BATCH, BATCH):
            body = orjson.dumps([{"topic": f"t{first + n}", "data": n} for n in range(BATCH)])
            start = cpu_seconds(thread)
            response = client.post("/items", content=body, headers=headers)
            seconds.append(cpu_seconds(thread) - start)
            assert response.status_code == 201, response.text
        assert client.get("/stats").json()["cache_items"] == BATCH
    early, late = sum(seconds[:MEASURED]), sum(seconds[-MEASURED:])
    # When the loss log was a dict, folding its oldest topic out scanned the holes left at
    # its front: past 100,000 topics, the more the longer the dict went without a resize
    # (the last batches here come just before one), and they cost 2-5x the first ones.
    assert late < 2 * early, (
        f"server CPU: {early:.2f} s for the first {MEASURED} batches, {late:.2f} s for the last"
    )
