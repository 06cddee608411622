"""The load itself, as run inside one client process: many open streams, and closed-loop
publishers over keep-alive connections."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .errors import BenchError
from .histogram import Histogram
from .http import HttpConnection
from .sse import SseStream, open_stream
from .tally import Tally
from .wire import Wire


@dataclass(frozen=True, slots=True)
class OpenReport:
    """How many streams were opened and subscribed, and why others were not."""

    opened: int
    failed: int
    first_error: str = ""


@dataclass(frozen=True, slots=True)
class Progress:
    """Where the slowest open stream is: the lowest next sequence number any stream awaits."""

    lowest_next: int
    alive: int
    events: int


@dataclass(slots=True)
class PublishReport:
    """The outcome of a closed-loop publish run: requests and items stored, and latencies."""

    requests: int = 0
    items: int = 0
    errors: int = 0
    elapsed: float = 0.0
    first_error: str = ""
    latency: Histogram = field(default_factory=Histogram)

    def merge(self, other: PublishReport) -> None:
        self.requests += other.requests
        self.items += other.items
        self.errors += other.errors
        self.elapsed = max(self.elapsed, other.elapsed)
        self.first_error = self.first_error or other.first_error
        self.latency.merge(other.latency)


class Streams:
    """The subscribers one process holds open, all counting into one `Tally`.

    One stream in ``timed_every`` is timed (see `SseStream`); the others are checked in
    bulk, a slice at a time every `FLUSH_TICK` seconds so that no single pause delays the
    timed streams' reads, and all at once before progress is reported.
    """

    FLUSH_TICK = 0.01
    FLUSH_ROUND = 0.25
    """Every stream is flushed within this many seconds."""

    def __init__(self) -> None:
        self.tally = Tally()
        self._streams: list[SseStream] = []
        self._cursor = 0

    async def open(
        self,
        wire: Wire,
        channel: str,
        count: int,
        concurrency: int,
        wait_s: float,
        producers: int = 1,
        timed_every: int = 10,
    ) -> OpenReport:
        """Open ``count`` streams, ``concurrency`` at a time, each waiting until subscribed.

        ``producers`` is how many producers will publish to ``channel`` (see `SseStream`).
        """
        request = wire.subscribe(channel)
        gate = asyncio.Semaphore(concurrency)
        errors: list[str] = []

        async def one(index: int) -> None:
            async with gate:
                try:
                    async with asyncio.timeout(wait_s):
                        stream = await open_stream(
                            wire.host,
                            wire.port,
                            request,
                            wire.ready_marker,
                            self.tally,
                            timed=index % timed_every == 0,
                            producers=producers,
                        )
                        self._streams.append(stream)
                        await stream.ready
                except (OSError, TimeoutError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(one(index) for index in range(count)))
        self.tally.errors += len(errors)
        return OpenReport(count - len(errors), len(errors), errors[0] if errors else "")

    async def keep_flushing(self) -> None:
        """Forever: check a slice of the streams' reads every tick."""
        while True:
            await asyncio.sleep(self.FLUSH_TICK)
            streams = self._streams
            if not streams:
                continue
            size = -(-len(streams) * self.FLUSH_TICK // self.FLUSH_ROUND)  # ceiling
            start = self._cursor % len(streams)
            for stream in streams[start : start + int(size)]:
                stream.flush()
            self._cursor = start + int(size)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()

    def progress(self) -> Progress:
        self.flush()
        alive = [stream for stream in self._streams if stream.alive]
        lowest = min((stream.next_seq for stream in alive), default=0)
        return Progress(lowest, len(alive), self.tally.events)

    def close(self) -> int:
        self.flush()
        closed = len(self._streams)
        for stream in self._streams:
            stream.close()
        self._streams.clear()
        return closed


async def publish_load(
    wire: Wire,
    channel: str,
    connections: int,
    duration: float,
    batch: int,
    seq_base: int,
    keys: int,
) -> PublishReport:
    """Publish as fast as responses come, for ``duration`` s, over ``connections`` connections.

    ``batch`` > 1 sends arrays of that many items. Items are keyed ``k<seq % keys>``.
    """
    report = PublishReport()
    conns = [await HttpConnection.open(wire.host, wire.port) for _ in range(connections)]
    start = time.monotonic()
    deadline = start + duration
    counts = report.latency.counts
    top = len(counts) - 1

    async def run(conn: HttpConnection, seq: int) -> None:
        while time.monotonic() < deadline:
            if batch > 1:
                request = wire.publish_batch(channel, range(seq, seq + batch), keys)
            else:
                request = wire.publish(channel, seq, f"k{seq % keys}")
            sent = time.perf_counter_ns()
            try:
                status, body = await conn.request(request)
            except BenchError as exc:
                report.errors += 1
                report.first_error = report.first_error or str(exc)
                return
            counts[min((time.perf_counter_ns() - sent) // 100_000, top)] += 1
            if 200 <= status < 300:
                report.requests += 1
                report.items += batch
            else:
                report.errors += 1
                report.first_error = report.first_error or f"HTTP {status}: {body[:200]!r}"
            seq += batch

    try:
        await asyncio.gather(
            *(run(conn, seq_base + index * 1_000_000_000) for index, conn in enumerate(conns))
        )
    finally:
        for conn in conns:
            conn.close()
    report.elapsed = time.monotonic() - start
    return report


async def publish_range(wire: Wire, channel: str, seqs: range, connections: int) -> int:
    """Publish items ``seqs`` (each keyed by its own ``k<seq>``) as fast as the server takes them.

    Tailcast gets batches; Nchan one item per request. Returns how many were stored.
    """
    batch = 1000 if wire.batches else 1
    starts = iter(range(seqs.start, seqs.stop, batch))
    stored = 0
    conns = [await HttpConnection.open(wire.host, wire.port) for _ in range(connections)]

    async def run(conn: HttpConnection) -> None:
        nonlocal stored
        for first in starts:
            chunk = range(first, min(first + batch, seqs.stop))
            if wire.batches:
                request = wire.publish_batch(channel, chunk)
            else:
                request = wire.publish(channel, first, f"k{first}")
            status, body = await conn.request(request)
            if not 200 <= status < 300:
                raise BenchError(f"publishing failed: HTTP {status}: {body[:200]!r}")
            stored += len(chunk)

    try:
        await asyncio.gather(*(run(conn) for conn in conns))
    finally:
        for conn in conns:
            conn.close()
    return stored
