"""A reader that stops reading never slows producers; when it resumes it catches up from
the cache in order, or learns through a `reset` which items it can no longer get."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from tests.http.helpers import (
    STINGY_RCVBUF,
    Event,
    events,
    publish_many,
    stingy_transport,
    strictly_increasing,
    take,
    until_live,
)
from tests.support import RunningServer, run_server

BATCHES = 200
BATCH_SIZE = 100
PAD = "x" * 1000  # ~1.1 kB per item: 20,000 items are ~22 MB, far beyond socket buffers


def _most_bytes_in_flight() -> int:
    """An upper bound on what the network can hold for a reader that does not read: the
    server's send buffer, the reader's (fixed) receive buffer and uvicorn's write buffer."""
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        wmem_max = 4 * 1024 * 1024
    return wmem_max + 2 * STINGY_RCVBUF + 64 * 1024


@contextmanager
def _paused_reader(**settings: Any) -> Iterator[tuple[RunningServer, Iterator[Event]]]:
    """A server with a 64-item live buffer and a reader that has seen `live` and then
    reads nothing until the test advances its events."""
    settings = {"live_buffer_items": 64, "send_timeout": 60, "heartbeat": 60, **settings}
    with (
        run_server(**settings) as server,
        # A small fixed receive buffer, so the reader's side holds little.
        httpx.Client(base_url=server.url, timeout=30, transport=stingy_transport()) as reader,
        connect_sse(reader, "GET", "/stream") as source,
    ):
        stream = events(source.iter_sse())
        until_live(stream)
        yield server, stream


def _publish_all(server: RunningServer) -> list[str]:
    """Publish 200 batches of 100 items, each answered 201; their ids in order."""
    statuses: list[int] = []
    posted: list[str] = []
    sent_bytes = 0
    with httpx.Client(base_url=server.url, timeout=30) as producer:
        for batch in range(BATCHES):
            payload = [
                {"data": {"n": batch * BATCH_SIZE + i, "pad": PAD}} for i in range(BATCH_SIZE)
            ]
            response = producer.post("/items", json=payload, headers=server.auth)
            statuses.append(response.status_code)
            if response.status_code == 201:
                posted += [item["id"] for item in response.json()]
                sent_bytes += len(response.content)
    assert statuses == [201] * BATCHES
    assert len(posted) == BATCHES * BATCH_SIZE
    # So the reader fell far behind the 64-item live buffer and must catch up from cache.
    assert sent_bytes > 2 * _most_bytes_in_flight()
    return posted


def _read_through(stream: Iterator[Event], last: str) -> list[Event]:
    """Events up to and including the item ``last``."""
    received: list[Event] = []
    for event in stream:
        received.append(event)
        if event.event == "item" and event.id == last:
            return received
    raise AssertionError(f"stream ended before {last}")


def test_paused_reader_does_not_hold_up_producers_and_then_catches_up_in_order() -> None:
    with _paused_reader() as (server, stream):
        # The reader reads nothing while every POST is answered.
        posted = _publish_all(server)
        # Now it resumes.
        received = _read_through(stream, posted[-1])

    # The cache (default size) still holds every item, so nothing was lost: no reset.
    assert [event.event for event in received] == ["item"] * len(posted)
    ids = [event.id for event in received]
    assert strictly_increasing(ids)
    assert ids == posted
    assert [event.data["data"]["n"] for event in received] == list(range(len(posted)))


def test_paused_reader_overrun_past_the_cache_gets_a_reset_then_what_is_cached() -> None:
    cached = 5000
    with _paused_reader(cache_max_items=cached) as (server, stream):
        posted = _publish_all(server)
        received = _read_through(stream, posted[-1])

    items = [event.id for event in received if event.event == "item"]
    assert strictly_increasing(items)
    assert set(items) <= set(posted)
    resets = [(at, event) for at, event in enumerate(received) if event.event == "reset"]
    assert resets, "items were lost without a reset"
    for at, reset in resets:
        assert reset.data["reason"] == "evicted"
        # It names the last item the reader got before it (where it would resume from).
        before = [event.id for event in received[:at] if event.event == "item"]
        assert reset.data["requested"] == (before[-1] if before else None)
    # After the last reset: exactly what the cache held, from its oldest item to the newest.
    last_at, last_reset = resets[-1]
    after = [event.id for event in received[last_at + 1 :]]
    assert after == posted[posted.index(last_reset.data["oldest"]) :]
    assert len(after) <= cached
    # Nothing lost without a reset: every gap in what the reader got is right before one.
    index = {item: n for n, item in enumerate(posted)}
    positions = [index[i] for i in items]
    gaps = {n for n in range(1, len(positions)) if positions[n] != positions[n - 1] + 1}
    reset_points = {len([e for e in received[:at] if e.event == "item"]) for at, _ in resets}
    assert gaps <= reset_points


def test_reader_overrun_by_one_batch_right_after_live_catches_up_without_a_reset() -> None:
    # One batch far larger than the live buffer reaches the buffer in one step (with Redis,
    # in one tail read), so the reader is overrun before it reads any live item, while its
    # position is still the empty log's. Nothing left the cache: no reset.
    with (
        run_server(live_buffer_items=4) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
        connect_sse(client, "GET", "/stream") as source,
    ):
        stream = events(source.iter_sse())
        replayed, live = until_live(stream)
        assert (replayed, live.data) == ([], {"cutoff": None, "replayed": 0})
        posted = publish_many(client, server.auth, 20)
        received = take(stream, 20)
        assert [(e.event, e.id) for e in received] == [("item", item["id"]) for item in posted]
