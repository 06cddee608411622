"""One SSE subscriber connection that checks every item it receives.

Items carry ``{"s": <seq>, "t": <time_ns>}`` as their data (see `Wire`); ids are
Tailcast's ``<ms>-<seq>`` or Nchan's ``<unix s>:<tag>``, both compared as a pair of
integers. Every stream checks every item: ids strictly increasing, sequence numbers
without gap or duplicate. (Nchan's ids for multiplexed channels, ``<unix s>:[<tag>],<tag>``,
are not parsed: the bench subscribes to one channel, and an unreadable id is an anomaly.)

A read costs the client about as much as the server's write, so most streams only keep
what they read and check it in bulk on `flush` (regex passes and list comparisons in C, no
Python per item). *Timed* streams check each read as it comes and measure latency from
the item's send stamp; a sample of timed streams is enough for percentiles.
"""

from __future__ import annotations

import asyncio
import operator
import re
import time
from itertools import chain
from typing import cast

from .histogram import BUCKET_NS, BUCKETS
from .http import ChunkedDecoder, Head
from .tally import Tally

# Two plain searches are cheaper than one pattern spanning the event. Event data is JSON,
# which holds no raw newline, so "id: <n>-<n>\n" can only be the id field.
_ID = re.compile(rb"id: (\d+)[-:](\d+)\n")
_STAMP = re.compile(rb'"s":(\d+),"t":(\d+)')
# Chunked framing between chunks. SSE from either server has "\n" line endings and JSON
# has no raw CR, so "\r\n" only ever belongs to the framing.
_FRAMING = re.compile(rb"\r\n[0-9a-fA-F]+(?:;[^\r]*)?\r\n")
_RESET = b"event: reset"
_ID_FIELD = b"\nid: "  # every event's id line (JSON data holds no raw newline)
_TOP = BUCKETS - 1
_Pairs = list[tuple[bytes, bytes]]


class SseStream(asyncio.Protocol):
    """A subscriber on one stream, counting into a shared `Tally`.

    ``expect=None`` checks a live stream: sequence numbers must come consecutively from 0;
    with ``producers=P`` > 1, producer ``p`` publishes ``p, p + P, ...`` and each
    producer's items must come consecutively, in any interleaving with the others'.
    ``expect=N`` checks a replay of items published concurrently (in any order): each of
    ``0..N-1`` exactly once; `complete` resolves when all N have arrived. ``timed`` streams
    check every read at once and record latencies; the others check on `flush` (but each
    read until `ready`, so that it resolves promptly). An untimed replay only counts events
    as they arrive (`all_arrived`) and checks them on `flush`.
    """

    def __init__(
        self,
        request: bytes,
        ready_marker: bytes,
        tally: Tally,
        expect: int | None = None,
        timed: bool = True,
        producers: int = 1,
    ) -> None:
        self._request = request
        self._marker = ready_marker
        self.tally = tally
        self.timed = timed
        self._transport: asyncio.Transport | None = None
        self._head: Head | None = None
        self._raw = b""
        self._decoder: ChunkedDecoder | None = None
        self._tail = b""
        self._reads: list[bytes] = []
        self._last = (-1, -1)
        self._closing = False
        self._ready = False
        self.next_seq = 0
        """Live: how many items came in order (one producer: the sequence number due next).
        Replay: how many distinct items arrived."""
        self._producers = producers
        self._due = list(range(producers))
        """Live, several producers: the sequence number due next from each."""
        self._seen = bytearray(expect) if expect is not None else None
        self._counting = expect is not None and not timed
        self.arrived = 0
        """Replay, untimed: events counted on arrival, before any check."""
        self._carry = b"\n"  # a body may open with an event's id line
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        """Resolves when the ready marker (`live`, or Nchan's first comment) arrives."""
        self.complete: asyncio.Future[None] = loop.create_future()
        self.all_arrived: asyncio.Future[None] = loop.create_future()
        """Untimed replay: resolves when N events arrived (unchecked until `flush`)."""
        if expect == 0:
            self.complete.set_result(None)

    @property
    def alive(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self.tally.errors += 1
        reason = ConnectionError(f"stream closed by the server: {exc}")
        for future in (self.ready, self.complete, self.all_arrived):
            if not future.done():
                future.set_exception(reason)
                future.exception()  # retrieved: whoever awaits it sees it, nobody else warns

    def data_received(self, data: bytes) -> None:
        if self._ready and not self.timed and self._seen is None:
            self._reads.append(data)  # the hot path: checked in bulk by `flush`
            return
        if self._head is None:
            data = self._read_head(data)
            if not data:
                return
        if self._counting:
            self._note_arrivals(data)
            return
        if not self.timed:
            self._reads.append(data)
            self.flush()
            return
        if self._decoder is not None:
            data = self._decoder.feed(data)
        self._complete_events(data, time.time_ns())

    def _note_arrivals(self, data: bytes) -> None:
        """A replay, untimed: count events as they arrive and check them once all have.

        Counting is a byte search (after taking off chunk framing, which may cut an event
        anywhere), so the time until the last item (or the ready marker) arrives measures
        the server, not this client's checks, which follow in `flush`.
        """
        if self._decoder is not None:
            data = self._decoder.feed(data)
        self._reads.append(data)
        joined = self._carry + data
        self.arrived += joined.count(_ID_FIELD)
        self._carry = joined[-(len(_ID_FIELD) - 1) :]
        if not self._ready and self._marker in joined:
            self._ready = True
            self.ready.set_result(None)
        seen = self._seen
        if seen is not None and self.arrived >= len(seen) and not self.all_arrived.done():
            self.all_arrived.set_result(None)

    def flush(self) -> None:
        """Check what an untimed stream has read since the last flush."""
        if not self._reads:
            return
        data = b"".join(self._reads)
        self._reads.clear()
        if self._decoder is not None and not self._counting:
            # A framing line cut at the end of the read stays in the tail, and is matched
            # whole once the rest of it arrives.
            data = _FRAMING.sub(b"", self._tail + data)
            self._tail = b""
        self._complete_events(data, None)

    def _read_head(self, data: bytes) -> bytes:
        raw = self._raw + data
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            self._raw = raw
            return b""
        self._raw = b""
        self._head = head = Head(raw[:end])
        if head.status != 200:
            self.connection_lost(ConnectionError(f"HTTP {head.status}"))
            self.close()
            return b""
        if not head.chunked:
            return raw[end + 4 :]
        self._decoder = ChunkedDecoder()
        # The first chunk's size line has no framing CRLF before it; `flush` wants one.
        return raw[end + 2 :] if not (self.timed or self._counting) else raw[end + 4 :]

    def _complete_events(self, data: bytes, now: int | None) -> None:
        """Take the complete events of ``self._tail + data``; keep the rest as the tail."""
        if self._tail:
            data = self._tail + data
        if data.endswith(b"\n\n"):
            self._tail = b""
            self._take(data, len(data), now)
            return
        end = data.rfind(b"\n\n")
        if end < 0:
            self._tail = data
            return
        self._tail = data[end + 2 :]
        self._take(data, end + 2, now)

    def _take(self, data: bytes, end: int, now: int | None) -> None:
        """Check and count the items of the complete events in ``data[:end]``."""
        tally = self.tally
        ids: _Pairs = _ID.findall(data, 0, end)
        if ids:
            stamps: _Pairs = _STAMP.findall(data, 0, end)
            if len(stamps) != len(ids):
                tally.unexpected += abs(len(ids) - len(stamps))
                count = min(len(ids), len(stamps))
                ids, stamps = ids[:count], stamps[:count]
            self._check(ids, stamps, now)
        if data.find(_RESET, 0, end) >= 0:
            tally.resets += data.count(_RESET, 0, end)
        if not self._ready and data.find(self._marker, 0, end) >= 0:
            self._ready = True
            self.ready.set_result(None)

    def _check(self, ids: _Pairs, stamps: _Pairs, now: int | None) -> None:
        if not ids:
            return
        tally = self.tally
        millis, counters = zip(*ids, strict=True)
        idents = list(zip(map(int, millis), map(int, counters), strict=True))
        increasing = sum(map(operator.lt, [self._last, *idents[:-1]], idents))
        tally.disorder += len(idents) - increasing
        self._last = idents[-1]
        seqs_text, times_text = zip(*stamps, strict=True)
        seqs = list(map(int, seqs_text))
        expected = self.next_seq
        if self._seen is not None:
            self._check_one_by_one(seqs)
        elif self._producers > 1:
            self._check_interleaved(seqs)
        elif seqs == list(range(expected, expected + len(seqs))):
            self.next_seq = expected + len(seqs)
        else:
            self._check_one_by_one(seqs)
        tally.events += len(seqs)
        if now is not None:
            tally.last_ns = now
            counts = tally.latency.counts
            for stamp in map(int, times_text):
                bucket = (now - stamp) // BUCKET_NS
                counts[_TOP if bucket > _TOP else 0 if bucket < 0 else bucket] += 1

    def _check_interleaved(self, seqs: list[int]) -> None:
        """Several producers: each one's items in order, whatever the interleaving.

        A stable sort by producer lines each producer's items up in their arrival order;
        when that equals every producer's next items, all is well (C loops, no Python per
        item); otherwise each item is checked against its producer's counter.
        """
        producers, due = self._producers, self._due
        producer_of = producers.__rmod__  # seq % producers
        owners = list(map(producer_of, seqs))
        counts = list(map(owners.count, range(producers)))
        expected = list(
            chain.from_iterable(
                range(due[p], due[p] + counts[p] * producers, producers) for p in range(producers)
            )
        )
        if sorted(seqs, key=producer_of) == expected:
            for p in range(producers):
                due[p] += counts[p] * producers
        else:
            tally = self.tally
            for seq in seqs:
                p = seq % producers
                if seq == due[p]:
                    due[p] = seq + producers
                elif seq > due[p]:
                    tally.gaps += (seq - due[p]) // producers
                    due[p] = seq + producers
                else:
                    tally.duplicates += 1
        self.next_seq = sum((next_seq - p) // producers for p, next_seq in enumerate(due))

    def _check_one_by_one(self, seqs: list[int]) -> None:
        tally = self.tally
        expected = self.next_seq
        seen = self._seen
        for seq in seqs:
            if seen is None:
                if seq == expected:
                    expected += 1
                elif seq > expected:
                    tally.gaps += seq - expected
                    expected = seq + 1
                else:
                    tally.duplicates += 1
            elif seq >= len(seen):
                tally.unexpected += 1
            elif seen[seq]:
                tally.duplicates += 1
            else:
                seen[seq] = 1
                expected += 1
        self.next_seq = expected
        if seen is not None and expected == len(seen) and not self.complete.done():
            self.complete.set_result(None)


async def open_stream(
    host: str,
    port: int,
    request: bytes,
    ready_marker: bytes,
    tally: Tally,
    expect: int | None = None,
    timed: bool = True,
    producers: int = 1,
) -> SseStream:
    """Connect and send the request; the stream's `ready` says when it is subscribed."""
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(
        lambda: SseStream(request, ready_marker, tally, expect, timed, producers), host, port
    )
    return stream
