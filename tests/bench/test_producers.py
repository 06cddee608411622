"""The fan-out's producers: sequential ones keep one request in flight each, number their
items so that subscribers can check every producer's, and account for what they sent."""

from __future__ import annotations

import asyncio
import re

import pytest

from bench.errors import BenchError
from bench.producers import PipelinedProducer, SequentialProducers
from bench.sse import open_stream
from bench.tally import Tally
from bench.wire import Wire
from tests.bench.helpers import answering
from tests.support import RunningServer


def _seqs(bodies: list[bytes]) -> list[int]:
    return [int(seq) for body in bodies for seq in re.findall(rb'"s":(\d+)', body)]


async def test_a_sequential_producer_waits_for_each_response_before_the_next() -> None:
    async with answering(delay=0.005) as (host, port, received):
        producers = SequentialProducers(Wire("tailcast", host, port, "t"), "c", 4)
        try:
            async with asyncio.timeout(10):
                await producers.run(rate=400, seconds=0.1)
        finally:
            producers.close()
    assert len(received.bodies) == 4
    assert sum(map(len, received.bodies)) == 40
    assert received.most_in_flight == 1


async def test_a_pipelined_producer_does_not_wait_for_responses() -> None:
    async with answering(delay=0.05) as (host, port, received):
        producer = PipelinedProducer(Wire("tailcast", host, port, "t"), "c")
        async with asyncio.timeout(10):
            await producer.run(rate=400, seconds=0.1)
    assert received.most_in_flight > 1


async def test_each_sequential_producer_numbers_its_items_in_its_own_stride() -> None:
    async with answering() as (host, port, received):
        producers = SequentialProducers(Wire("tailcast", host, port, "t"), "c", 3)
        try:
            async with asyncio.timeout(10):
                await producers.run(rate=1000, seconds=0.02)
                await producers.run(rate=1000, seconds=0.02)
        finally:
            producers.close()
    # Keep-alive: the second step goes over the same three connections. Each step's 20
    # items are shared 7, 7, 6; each producer numbers its own p, p + 3, p + 6, ...
    per_connection = sorted((_seqs(bodies) for bodies in received.bodies), key=lambda s: s[0])
    assert per_connection == [list(range(p, p + 3 * n, 3)) for p, n in enumerate([14, 14, 12])]
    assert producers.published == 40


async def test_sequential_producers_time_every_round_trip() -> None:
    async with answering(delay=0.002) as (host, port, _):
        producers = SequentialProducers(Wire("tailcast", host, port, "t"), "c", 2)
        try:
            async with asyncio.timeout(10):
                run = await producers.run(rate=500, seconds=0.05)
        finally:
            producers.close()
    assert run.round_trips is not None
    assert run.round_trips.total == producers.published == 25
    assert (run.round_trips.percentile_ms(0.5) or 0) >= 2


async def test_a_producer_slower_than_its_schedule_reports_how_late_it_was() -> None:
    async with answering(delay=0.02) as (host, port, _):
        producers = SequentialProducers(Wire("tailcast", host, port, "t"), "c", 1)
        try:
            async with asyncio.timeout(10):
                run = await producers.run(rate=200, seconds=0.1)  # 20 items, each >= 20 ms
        finally:
            producers.close()
    assert run.lag_s > 0.2  # the last item was due at 95 ms and went out after ~380 ms


async def test_a_refused_publish_fails_the_step() -> None:
    async with answering(status=503) as (host, port, _):
        producers = SequentialProducers(Wire("tailcast", host, port, "t"), "c", 2)
        try:
            with pytest.raises(BenchError, match="HTTP 503"):
                async with asyncio.timeout(10):
                    await producers.run(rate=100, seconds=0.05)
        finally:
            producers.close()


async def test_concurrent_producers_reach_a_subscriber_clean(server: RunningServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    wire = Wire("tailcast", "127.0.0.1", port, server.token)
    tally = Tally()
    request = wire.subscribe("bench")
    stream = await open_stream(
        wire.host, wire.port, request, wire.ready_marker, tally, timed=False, producers=4
    )
    producers = SequentialProducers(wire, "bench", 4)
    try:
        async with asyncio.timeout(10):
            await stream.ready
            await producers.run(rate=2000, seconds=0.1)
            while stream.next_seq < producers.published:
                await asyncio.sleep(0.01)
                stream.flush()
    finally:
        producers.close()
        stream.close()
    assert (producers.published, tally.events, tally.anomalies) == (200, 200, {})
