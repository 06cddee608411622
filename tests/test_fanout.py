"""The fan-out writes live items to caught-up streams; under load, one write carries
several items, and a stream still gets every item once, in order."""

from __future__ import annotations

import json
import re
import socket
import time
from urllib.parse import urlsplit

from app.fanout import Round
from streaming import Draft, MemoryBackend
from tests.support import RunningServer

PIPELINED = 10


class _RawStream:
    """A subscriber on a plain socket that keeps the body's chunks as the server wrote them."""

    def __init__(self, server: RunningServer) -> None:
        address = urlsplit(server.url)
        self.sock = socket.create_connection((address.hostname, address.port), timeout=10)
        self.sock.sendall(b"GET /stream HTTP/1.1\r\nhost: test\r\n\r\n")
        self._buffer = b""
        self._head_done = False

    def chunks(self) -> list[bytes]:
        """The chunks that have arrived whole so far (blocks until at least one has)."""
        self._buffer += self.sock.recv(65536)
        if not self._head_done:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return []
            assert head.startswith(b"HTTP/1.1 200"), head
            self._buffer, self._head_done = rest, True
        chunks = []
        while (eol := self._buffer.find(b"\r\n")) >= 0:
            size = int(self._buffer[:eol], 16)
            if len(self._buffer) < eol + 2 + size + 2:
                break
            chunks.append(self._buffer[eol + 2 : eol + 2 + size])
            self._buffer = self._buffer[eol + 2 + size + 2 :]
        return chunks

    def until_live(self) -> None:
        while not any(b"event: live" in chunk for chunk in self.chunks()):
            pass

    def item_chunks(self, count: int) -> list[list[int]]:
        """Read until ``count`` items arrived: each chunk's items' ``data.n``, chunk by chunk."""
        seen: list[list[int]] = []
        deadline = time.monotonic() + 10
        while sum(map(len, seen)) < count and time.monotonic() < deadline:
            for chunk in self.chunks():
                numbers = [
                    json.loads(line[len(b"data: ") :])["data"]["n"]
                    for line in chunk.split(b"\n")
                    if line.startswith(b"data: ") and b'"n"' in line
                ]
                if numbers:
                    seen.append(numbers)
        return seen

    def close(self) -> None:
        self.sock.close()


def _pipelined_publishes(server: RunningServer, count: int) -> list[bytes]:
    """Send ``count`` single-item POSTs in one write on one connection; their responses."""
    address = urlsplit(server.url)
    requests = b""
    for n in range(count):
        body = json.dumps({"topic": "t", "data": {"n": n}}).encode()
        requests += (
            b"POST /items HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
            b"authorization: Bearer %s\r\ncontent-length: %d\r\n\r\n%s"
            % (server.token.encode(), len(body), body)
        )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(requests)
        received = b""
        while received.count(b"HTTP/1.1 ") < count or not received.endswith(b"}"):
            received += sock.recv(65536)
    return re.findall(rb"HTTP/1\.1 [^\r]*", received)


def test_items_from_pipelined_publishes_go_out_together(server: RunningServer) -> None:
    stream = _RawStream(server)
    try:
        stream.until_live()
        statuses = _pipelined_publishes(server, PIPELINED)
        chunks = stream.item_chunks(PIPELINED)
    finally:
        stream.close()
    assert statuses == [b"HTTP/1.1 201 Created"] * PIPELINED
    assert [n for chunk in chunks for n in chunk] == list(range(PIPELINED))
    # One round per publish would give one write per item; the fan-out waits for the
    # publishes already in the server's hands, so the items share far fewer writes.
    assert len(chunks) <= PIPELINED // 2, chunks


def test_a_round_encodes_each_shared_batch_once_whatever_the_order_of_streams() -> None:
    backend = MemoryBackend()
    on_a, on_b = backend.subscribe(["a"]), backend.subscribe(["b"])
    for subscription in (on_a, on_b):
        while subscription.poll():
            pass
    backend.publish_now([Draft(1, topic="a"), Draft(2, topic="b")])
    current = Round(0.0)
    batch_a, batch_b = on_a.poll(current.batches), on_b.poll(current.batches)
    assert batch_a is not None
    assert batch_b is not None
    first_a = current.chunk(batch_a)
    first_b = current.chunk(batch_b)
    # Streams on the two topics interleave; each batch's chunk is still built only once.
    assert current.chunk(batch_a) is first_a
    assert current.chunk(batch_b) is first_b
    assert first_a == b"%x\r\n%s\r\n" % (len(batch_a[0].frame), batch_a[0].frame)
