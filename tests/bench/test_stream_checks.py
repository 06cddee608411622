"""The bench's load client judges integrity: every stream must count every item it gets,
and flag any duplicate, gap or out-of-order id, however the bytes are split on the wire."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence

import pytest

from bench.http import HttpConnection
from bench.sse import SseStream, open_stream
from bench.tally import Tally
from bench.wire import Wire
from tests.bench.helpers import playing
from tests.support import RunningServer

_NOW = time.time_ns()
_TAILCAST_LIVE = b"event: live\ndata: {}\n\n"
_NCHAN_HI = b": hi\n\n"


def _tailcast_frame(position: int, seq: int) -> bytes:
    ident = b"%d-%d" % (1_795_291_488_000 + position // 3, position % 3)
    return (
        b'event: item\nid: %s\ndata: {"id":"%s","key":"k","topic":"t",'
        b'"data":{"s":%d,"t":%d},"created_at":1}\n\n' % (ident, ident, seq, _NOW)
    )


def _nchan_frame(position: int, seq: int) -> bytes:
    return b'id: %d:%d\ndata: {"s":%d,"t":%d}\n\n' % (
        1_795_291_488 + position // 5,
        position % 5,
        seq,
        _NOW,
    )


def _chunked(writes: Sequence[bytes]) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    return head + b"".join(b"%x\r\n%s\r\n" % (len(w), w) for w in writes)


def _plain(writes: Sequence[bytes]) -> bytes:
    return b"HTTP/1.1 200 OK\r\n\r\n" + b"".join(writes)


def _nchan_chunked_body(seqs: Sequence[int]) -> bytes:
    """As nginx may send it: chunked, with chunk boundaries anywhere in an event."""
    payload = b"".join([_NCHAN_HI, *(_nchan_frame(i, s) for i, s in enumerate(seqs))])
    return _chunked([payload[at : at + 97] for at in range(0, len(payload), 97)])


def _tailcast_body(seqs: Sequence[int]) -> bytes:
    frames = [_tailcast_frame(i, s) for i, s in enumerate(seqs)]
    return _chunked([b"retry: 2000\n" + _TAILCAST_LIVE, *frames, b": heartbeat\n\n"])


def _nchan_body(seqs: Sequence[int]) -> bytes:
    return _plain([_NCHAN_HI, *(_nchan_frame(i, s) for i, s in enumerate(seqs))])


async def _read(
    raw: bytes,
    marker: bytes,
    timed: bool,
    expect: int | None = None,
    items: int = 0,
    producers: int = 1,
) -> tuple[Tally, SseStream]:
    tally = Tally()
    async with playing(raw) as (host, port):
        stream = await open_stream(
            host, port, b"GET / HTTP/1.1\r\n\r\n", marker, tally, expect, timed, producers
        )
        async with asyncio.timeout(10):
            await (stream.ready if expect is None else stream.complete)
            while stream.next_seq < items and stream.alive:
                await asyncio.sleep(0.01)
                stream.flush()
        stream.flush()
        stream.close()
    return tally, stream


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "bulk"])
async def test_a_clean_chunked_stream_cut_anywhere_counts_every_item(timed: bool) -> None:
    tally, stream = await _read(_tailcast_body(range(300)), b"event: live", timed, items=300)
    assert (tally.events, tally.anomalies, stream.next_seq) == (300, {}, 300)


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "bulk"])
async def test_a_missing_and_a_repeated_item_are_a_gap_and_a_duplicate(timed: bool) -> None:
    seqs = [*range(100), *range(101, 200), 150, *range(200, 250)]
    tally, _ = await _read(_tailcast_body(seqs), b"event: live", timed, items=250)
    assert tally.anomalies == {"gaps": 1, "duplicates": 1}


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "bulk"])
async def test_nchan_ids_on_an_unchunked_body_are_checked(timed: bool) -> None:
    tally, _ = await _read(_nchan_body(range(200)), b": hi", timed, items=200)
    assert (tally.events, tally.anomalies) == (200, {})


def _interleaved(producers: int, each: int, seed: int) -> list[int]:
    """Producer p's items p, p + producers, ... in order, interleaved at random."""
    queues = [list(range(p, p + producers * each, producers)) for p in range(producers)]
    order = [p for p in range(producers) for _ in range(each)]
    random.Random(seed).shuffle(order)
    return [queues[p].pop(0) for p in order]


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "bulk"])
async def test_items_of_concurrent_producers_interleaved_any_way_are_all_counted(
    timed: bool,
) -> None:
    seqs = _interleaved(4, 75, seed=11)
    raw = _tailcast_body(seqs)
    tally, stream = await _read(raw, b"event: live", timed, items=300, producers=4)
    assert (tally.events, tally.anomalies, stream.next_seq) == (300, {}, 300)


@pytest.mark.parametrize("timed", [True, False], ids=["timed", "bulk"])
async def test_one_producer_missing_and_repeating_an_item_is_a_gap_and_a_duplicate(
    timed: bool,
) -> None:
    seqs = _interleaved(4, 75, seed=13)
    seqs.remove(42)  # producer 2's 11th item
    seqs.insert(seqs.index(101) + 1, 97)  # producer 1's 25th item again, after its 26th
    tally, _ = await _read(_tailcast_body(seqs), b"event: live", timed, items=300, producers=4)
    assert tally.anomalies == {"gaps": 1, "duplicates": 1}


async def test_an_id_that_does_not_increase_is_out_of_order() -> None:
    frames = [_nchan_frame(0, 0), _nchan_frame(2, 1), _nchan_frame(1, 2), _nchan_frame(3, 3)]
    tally, _ = await _read(_plain([_NCHAN_HI, *frames]), b": hi", timed=False, items=4)
    assert tally.anomalies == {"out-of-order ids": 1}


async def test_a_reset_event_is_an_anomaly() -> None:
    reset = b'event: reset\ndata: {"reason":"evicted"}\n\n'
    tally, _ = await _read(_chunked([_TAILCAST_LIVE, reset]), b"event: live", timed=True)
    assert tally.anomalies == {"resets": 1}


async def test_a_replay_in_any_order_is_complete_when_every_item_arrived() -> None:
    seqs = list(range(500))
    random.Random(3).shuffle(seqs)
    tally, stream = await _read(_nchan_body(seqs), b": hi", timed=True, expect=500)
    assert stream.complete.done()
    assert (tally.events, tally.anomalies) == (500, {})


@pytest.mark.parametrize(
    ("body", "marker"),
    [(_nchan_body, b": hi"), (_nchan_chunked_body, b": hi"), (_tailcast_body, b"event: live")],
    ids=["nchan", "nchan-chunked", "tailcast"],
)
async def test_an_untimed_replay_counts_arrivals_then_checks_every_item(
    body: Callable[[Sequence[int]], bytes], marker: bytes
) -> None:
    seqs = list(range(500))
    random.Random(5).shuffle(seqs)
    tally, stream = await _replay_untimed(body(seqs), marker)
    assert stream.complete.done()
    assert (stream.arrived, tally.events, tally.anomalies) == (500, 500, {})


async def test_an_untimed_replay_with_a_repeat_is_not_complete() -> None:
    seqs = [*range(250), 100, *range(250, 499)]
    tally, stream = await _replay_untimed(_nchan_body(seqs), b": hi")
    assert not stream.complete.done()
    assert (tally.events, tally.anomalies) == (500, {"duplicates": 1})


async def _replay_untimed(raw: bytes, marker: bytes) -> tuple[Tally, SseStream]:
    """Read a 500-event replay without timing: wait for every arrival, then check."""
    tally = Tally()
    async with playing(raw) as (host, port):
        request = b"GET / HTTP/1.1\r\n\r\n"
        stream = await open_stream(host, port, request, marker, tally, 500, timed=False)
        async with asyncio.timeout(10):
            await stream.all_arrived
        assert tally.events == 0  # nothing checked yet: arrivals are only counted
        stream.flush()
        stream.close()
    return tally, stream


async def test_timed_streams_measure_latency_from_the_send_stamp() -> None:
    tally, _ = await _read(_nchan_body(range(50)), b": hi", timed=True, items=50)
    assert tally.latency.total == 50
    assert tally.latency.percentile_ms(0.5) is not None


async def test_the_load_client_reads_a_live_tailcast_stream_clean(server: RunningServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    wire = Wire("tailcast", "127.0.0.1", port, server.token)
    tally = Tally()
    stream = await open_stream(
        wire.host, wire.port, wire.subscribe("bench"), wire.ready_marker, tally, timed=False
    )
    publisher = await HttpConnection.open(wire.host, wire.port)
    try:
        async with asyncio.timeout(10):
            await stream.ready
            for seq in range(20):
                status, _ = await publisher.request(wire.publish("bench", seq))
                assert status == 201
            status, _ = await publisher.request(wire.publish_batch("bench", range(20, 40)))
            assert status == 201
            while stream.next_seq < 40:
                await asyncio.sleep(0.01)
                stream.flush()
    finally:
        publisher.close()
        stream.close()
    assert (tally.events, tally.anomalies) == (40, {})
