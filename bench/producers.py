"""The fan-out's producers, run by the coordinator at a set rate: one pipelined producer,
or one or more sequential producers that wait for each response before the next item.

Producer ``p`` of ``P`` publishes sequence numbers ``p, p + P, p + 2P, ...`` in order, so
a subscriber that knows ``P`` can check each producer's items for gaps with a counter of
its own (`SseStream`), however the server interleaves the producers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from .errors import BenchError
from .histogram import Histogram
from .http import HttpConnection
from .plan import Pattern
from .wire import Wire

RESPONSE_WAIT = 30.0
"""Longest a producer waits for a publish response before the step fails."""


@dataclass(slots=True)
class ProducerRun:
    """One step's publishing: how late the last item went out, and the POST round trips."""

    lag_s: float
    round_trips: Histogram | None = None
    """Send to response of each POST (sequential producers: nothing else in flight on its
    connection); None for a pipelined producer, whose responses queue behind each other."""


class Producer(Protocol):
    published: int
    """Items published so far, over every step."""

    async def run(self, rate: float, seconds: float) -> ProducerRun:
        """Publish ``rate`` items/s for ``seconds``, in sequence-number order per producer."""
        ...

    def close(self) -> None: ...


def producer_for(pattern: Pattern, wire: Wire, channel: str) -> Producer:
    if pattern.pipelined:
        return PipelinedProducer(wire, channel)
    return SequentialProducers(wire, channel, pattern.producers)


def _check(status: int, body: bytes) -> None:
    if not 200 <= status < 300:
        raise BenchError(f"publish refused: HTTP {status}: {body[:200]!r}")


class PipelinedProducer:
    """Publishes one channel's items in sequence, at a set rate, pipelined on one connection.

    One connection keeps the server's id order equal to the sequence order (HTTP/1.1
    answers a connection's requests in turn), which lets subscribers check for gaps with a
    counter. Requests go out on schedule without waiting for earlier responses (open
    loop): a server that falls behind shows as delivery latency, not as a publisher that
    quietly slows down to its pace.
    """

    MAX_OUTSTANDING = 5_000
    """Responses the server may owe before the step counts as failed: the load stays bounded."""

    def __init__(self, wire: Wire, channel: str) -> None:
        self.wire = wire
        self.channel = channel
        self.published = 0

    async def run(self, rate: float, seconds: float) -> ProducerRun:
        loop = asyncio.get_running_loop()
        count = max(1, round(rate * seconds))
        conn = await HttpConnection.open(self.wire.host, self.wire.port)
        responses: list[asyncio.Future[tuple[int, bytes]]] = []
        try:
            start = loop.time()
            for index in range(count):
                delay = start + index / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if conn.outstanding >= self.MAX_OUTSTANDING:
                    raise BenchError(f"the server owes {conn.outstanding} publish responses")
                responses.append(conn.send(self.wire.publish(self.channel, self.published)))
                self.published += 1
            lag = max(0.0, loop.time() - (start + (count - 1) / rate))
            async with asyncio.timeout(RESPONSE_WAIT):
                answers = await asyncio.gather(*responses)
            for status, body in answers:
                _check(status, body)
            return ProducerRun(lag)
        finally:
            conn.close()
            for response in responses:
                if not response.done():
                    response.cancel()

    def close(self) -> None:
        pass


class SequentialProducers:
    """``count`` producers, each on one keep-alive connection with one request in flight.

    Together they keep a schedule of ``rate`` items/s: producer ``p`` sends the step's
    items ``p, p + count, ...`` each at its time, or as soon as the previous response came
    if that was later. A server slower to answer than the schedule allows shows as lag.
    """

    def __init__(self, wire: Wire, channel: str, count: int) -> None:
        self.wire = wire
        self.channel = channel
        self.count = count
        self.published = 0
        self._sent = [0] * count
        """Items each producer has published."""
        self._conns: list[HttpConnection] = []

    async def run(self, rate: float, seconds: float) -> ProducerRun:
        if not self._conns:
            self._conns = [
                await HttpConnection.open(self.wire.host, self.wire.port) for _ in range(self.count)
            ]
        loop = asyncio.get_running_loop()
        items = max(1, round(rate * seconds))
        round_trips = Histogram()
        lags = [0.0] * self.count
        start = loop.time()

        async def produce(index: int) -> None:
            conn = self._conns[index]
            for position in range(index, items, self.count):
                due = start + position / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                lags[index] = max(0.0, loop.time() - due)
                seq = self._sent[index] * self.count + index
                sent = time.perf_counter_ns()
                try:
                    async with asyncio.timeout(RESPONSE_WAIT):
                        status, body = await conn.request(self.wire.publish(self.channel, seq))
                except TimeoutError:
                    raise BenchError(f"no publish response within {RESPONSE_WAIT:g} s") from None
                round_trips.add_ns(time.perf_counter_ns() - sent)
                _check(status, body)
                self._sent[index] += 1
                self.published += 1

        tasks = [asyncio.ensure_future(produce(index)) for index in range(self.count)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()  # when one failed: the others stop too
        return ProducerRun(max(lags), round_trips)

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns = []
