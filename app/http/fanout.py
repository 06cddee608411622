"""Fan-out of live items by one task that writes to every caught-up stream in turn.

Waking a task per subscriber per item costs more than the write itself. So a stream
that has caught up and whose connection takes writes without blocking hands itself to
the `Fanout`: one task that, after each publish, polls every such stream's subscription
and writes what is ready in one non-blocking write. Items published while it writes
pile up in the log and go out together in the next round, so under load each write
carries several items; after a round that saw several publishes, the next waits half as
long as that round took, so that it carries more per write. Within a round, streams
at the same place on the same topics share one batch, read, filtered and encoded as a
chunk once (`Round`), which leaves little more than the write itself per stream. A
stream whose connection stops taking writes (the client reads slowly) is handed back to
its own task, which waits for the socket to drain; it can never hold up the others.

The streams are those uvicorn serves with httptools (`app.server.uvicorn_internals`): the
fan-out writes to their connections directly, in chunks of frames from `app.http.sse`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

import anyio
import anyio.lowlevel

from app.http.sse import frame_parts
from app.server.uvicorn_internals import framed_parts
from streaming import Broadcast
from streaming.patterns import PatternIndex
from streaming.subscription import Event, SharedBatches

logger = logging.getLogger("tailcast")

_SETTLE_MAX = 0.002
"""Longest (s) a round waits for publishes already under way."""
_SLICE = 64
"""Streams a round writes before it lets other tasks run (a publish is answered between
two slices, not after the whole round)."""
_BUSY = 2
"""Items published during a round from which the fan-out counts as busy: it then pauses
before the next round (`Fanout._gather`)."""
_GATHER_SHARE = 0.5
"""How long the fan-out pauses after a busy round, as a share of the round's time."""
_GATHER_MAX = 0.01
"""Longest (s) the fan-out pauses after a busy round."""


class Round:
    """What the streams flushed in one fan-out round share: live batches read once per
    (cursor, topics), and each batch's chunk, encoded once for every stream that has it.

    Valid while the live log does not change (``end`` is its end then): a round that
    yields between slices starts a new `Round` when a publish landed meanwhile.
    """

    __slots__ = ("_chunks", "batches", "end", "now")

    def __init__(self, now: float, end: int = -1) -> None:
        self.now = now
        self.end = end
        self.batches = SharedBatches()
        # By batch identity; each entry keeps its batch alive, so no id is reused meanwhile.
        self._chunks: dict[int, tuple[Sequence[Event], bytes]] = {}

    def chunk(self, batch: Sequence[Event]) -> bytes:
        """``batch`` as one chunk of the chunked body, encoded once per round."""
        known = self._chunks.get(id(batch))
        if known is None:
            known = self._chunks[id(batch)] = (batch, framed_parts(frame_parts(batch)))
        return known[1]


class Writer(Protocol):
    """A stream as the fan-out sees it."""

    @property
    def topics(self) -> frozenset[str]:
        """The stream's topics; empty for every topic."""
        ...

    def flush(self, current: Round) -> bool:
        """Write what is ready; False hands the stream back to its own task."""
        ...

    def resume(self) -> None:
        """Called once the fan-out lets go of the stream."""
        ...

    def abort(self) -> None:
        """Drop the stream: writing to it failed."""
        ...


class Fanout:
    """The task that writes live items to every stream handed to it.

    A round after a publish visits only the streams on the published items' topics, on
    the patterns matching them, and on every topic: streams on other topics have nothing
    to write, and thousands of
    them must not cost every publish. A round after a heartbeat nudge visits every
    stream, so each writes its heartbeat if it has been quiet, and takes the items of
    other topics it was not visited for off its cursor.
    """

    def __init__(self, broadcast: Broadcast, patterns: PatternIndex | None = None) -> None:
        self._broadcast = broadcast
        # Streams on a pattern are indexed under the pattern, which the published topics
        # reach through the patterns matching them (found once per topic, not per round).
        self._patterns = PatternIndex() if patterns is None else patterns
        self._writers: dict[Writer, None] = {}  # insertion order: fair turns
        self._by_topics: dict[frozenset[str], dict[Writer, None]] = {}
        self._by_topic: dict[str, dict[frozenset[str], None]] = {}
        self._arrival: anyio.Event | None = None  # set by the first stream after none
        self._arrived_at = 0  # the log's end then: the stream was caught up to it
        broadcast.on_close(self._end_wait)

    def __len__(self) -> int:
        return len(self._writers)

    def add(self, writer: Writer) -> None:
        if not self._writers:
            self._arrived_at = self._broadcast.end
            self._end_wait()
        self._writers[writer] = None
        topics = writer.topics
        group = self._by_topics.get(topics)
        if group is None:
            group = self._by_topics[topics] = {}
            for topic in topics:
                self._by_topic.setdefault(topic, {})[topics] = None
        group[writer] = None

    def discard(self, writer: Writer) -> None:
        if writer not in self._writers:
            return
        del self._writers[writer]
        topics = writer.topics
        group = self._by_topics[topics]
        del group[writer]
        if not group:
            del self._by_topics[topics]
            for topic in topics:
                groups = self._by_topic[topic]
                del groups[topics]
                if not groups:
                    del self._by_topic[topic]

    async def run(self) -> None:
        """Flush every writer after each publish (and each heartbeat nudge) until closed;
        with no stream to write to, sleep until one is handed over."""
        broadcast = self._broadcast
        flushed_end, nudges = broadcast.end, broadcast.nudges
        try:
            while not broadcast.closed:
                if not self._writers:
                    await self._wait_for_streams()
                    flushed_end, nudges = self._arrived_at, broadcast.nudges
                    continue
                # At once if items or a nudge came while the last round was under way.
                if broadcast.nudges == nudges:
                    await broadcast.wake_up(flushed_end)
                if not self._writers:
                    continue
                await self._settle()
                nudged = broadcast.nudges != nudges
                writers = self._concerned(flushed_end, nudged)
                flushed_end, nudges = broadcast.end, broadcast.nudges
                began = time.monotonic()
                await self._flush_all(writers)
                await self._gather(flushed_end, time.monotonic() - began)
        finally:
            for writer in list(self._writers):
                self._release(writer)

    async def _wait_for_streams(self) -> None:
        """With no stream to write to, sleep until one is handed over (or the log closes),
        not at every publish: waking this task cost a single POST 7% of its instructions."""
        if self._broadcast.closed:
            return
        self._arrival = anyio.Event()
        await self._arrival.wait()

    def _end_wait(self) -> None:
        if self._arrival is not None:
            self._arrival.set()
            self._arrival = None

    async def _settle(self) -> None:
        """Let publishes that are ready to run land first, so one round carries them all.

        A server answers a connection's pipelined requests one task after another, each
        made ready by the one before; without this, every such request would get a round
        of its own. The wait is bounded so a steady stream of publishes cannot starve it.
        """
        broadcast = self._broadcast
        deadline = time.monotonic() + _SETTLE_MAX
        while True:
            end = broadcast.end
            await anyio.lowlevel.checkpoint()
            if broadcast.end == end or time.monotonic() >= deadline:
                return

    async def _gather(self, began_at: int, took: float) -> None:
        """After a busy round, pause for half the time it took (at most `_GATHER_MAX`).

        Under a steady flow of publishes rounds would follow one another back to back, each
        write carrying what came during one round. A write costs the server (and the
        client) about the same whatever it carries, so the pause cuts the writes for the
        same items by a third, at the price of half a round's latency; a pause as long as
        the round cut more writes but pushed the p99 latency over 50 ms sooner. At rates
        where a round sees fewer than `_BUSY` publishes, rounds start at once. Publishes
        are answered during the pause as at any other time.
        """
        if self._broadcast.end - began_at >= _BUSY:
            await anyio.sleep(min(took * _GATHER_SHARE, _GATHER_MAX))

    def _concerned(self, since: int, nudged: bool) -> list[Writer]:
        """The streams a round visits: every one after a nudge (or when the log outran
        this task), else those on the topics of the items published from ``since`` on."""
        fresh = self._broadcast.read(since)
        if nudged or fresh is None:
            return list(self._writers)
        every = self._by_topics.get(frozenset(), {})
        groups = {
            topics: None
            for topic in self._patterns.expand({item.topic for item in fresh})
            for topics in self._by_topic.get(topic, ())
        }
        if not groups:
            return list(every)
        concerned = dict(every)
        for topics in groups:
            concerned.update(self._by_topics[topics])
        return list(concerned)

    async def _flush_all(self, writers: list[Writer]) -> None:
        """Flush ``writers``, yielding between slices so that publishes are answered
        meanwhile; streams in later slices then get their items in this round already."""
        broadcast = self._broadcast
        current = Round(time.monotonic(), broadcast.end)
        for start in range(0, len(writers), _SLICE):
            if start:
                await anyio.lowlevel.checkpoint()
                if broadcast.end != current.end:
                    current = Round(time.monotonic(), broadcast.end)
            for writer in writers[start : start + _SLICE]:
                if writer in self._writers and not self._flush(writer, current):
                    self._release(writer)

    def _flush(self, writer: Writer, current: Round) -> bool:
        try:
            return writer.flush(current)
        except Exception:
            # One stream's fault must not end the fan-out of every other stream. It lost
            # what the failed write held, so it must not go on either.
            logger.exception("fan-out: writing to a stream failed; dropping it")
            writer.abort()
            return False

    def _release(self, writer: Writer) -> None:
        if writer in self._writers:
            self.discard(writer)
            writer.resume()
