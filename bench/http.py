"""Just enough HTTP/1.1 for the load client: response heads, chunked bodies, keep-alive requests.

A general client (httpx) costs more CPU per request than the servers under test; these
protocols do the minimum per chunk so the client is not the bottleneck.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

from .errors import HttpError


class ChunkedDecoder:
    """Decodes a ``Transfer-Encoding: chunked`` body fed in arbitrary pieces."""

    __slots__ = ("_crlf", "_pending", "_remaining", "finished")

    def __init__(self) -> None:
        self._pending = b""
        self._remaining = 0
        self._crlf = False
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data``, in order; a partial size line waits for more."""
        if not (self._pending or self._remaining or self._crlf):
            # The common case on a stream: exactly one whole chunk per read.
            eol = data.find(b"\r\n")
            if eol > 0 and data.endswith(b"\r\n"):
                try:
                    size = int(data[:eol], 16)
                except ValueError:  # a chunk extension: take the general path
                    size = -1
                if size > 0 and len(data) == eol + size + 4:
                    return data[eol + 2 : eol + 2 + size]
        return self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        buf = self._pending + data if self._pending else data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end and not self.finished:
            if self._remaining:
                take = min(self._remaining, end - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                self._crlf = self._remaining == 0
            elif self._crlf:
                if end - pos < 2:
                    break
                pos += 2
                self._crlf = False
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
                if size == 0:
                    if end - eol < 4:
                        break  # the body's final CRLF has not arrived: keep the line
                    pos = eol + 4
                    self.finished = True
                    break
                pos = eol + 2
                self._remaining = size
        self._pending = buf[pos:] if pos < end else b""
        return out[0] if len(out) == 1 else b"".join(out)

    def rest(self) -> bytes:
        """Once finished: what came after the body (a pipelined response's start)."""
        return self._pending if self.finished else b""


class Head:
    """A parsed response head: status and the framing of the body."""

    __slots__ = ("chunked", "length", "status")

    def __init__(self, raw: bytes) -> None:
        lines = raw.split(b"\r\n")
        try:
            self.status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise HttpError(f"malformed status line {lines[0][:80]!r}") from None
        self.length: int | None = None
        self.chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self.length = int(value)
            elif name == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection reading whole responses, in order.

    `request` sends one request and waits for its response; `send` pipelines: it writes
    a request at once and returns a future for its response, so a paced publisher keeps
    its schedule whatever the server's response time (HTTP/1.1 answers in request order).
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._waiters: deque[asyncio.Future[tuple[int, bytes]]] = deque()
        self._buf = bytearray()
        self._head: Head | None = None
        self._decoder: ChunkedDecoder | None = None
        self._body: list[bytes] = []
        self._lost: Exception | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    @property
    def outstanding(self) -> int:
        """Requests sent whose responses have not arrived yet."""
        return len(self._waiters)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Send one complete request (head and body) and wait for its response."""
        return await self.send(data)

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send one complete request now; the future resolves with its response."""
        if self._lost is not None or self._transport is None:
            raise HttpError(f"connection closed: {self._lost}")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._transport.write(data)
        return waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("closed by the server")
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(HttpError(f"connection lost: {self._lost}"))

    def data_received(self, data: bytes) -> None:
        while data:
            data = self._consume(data)

    def _consume(self, data: bytes) -> bytes:
        """Take what belongs to the response under way; return what is left (pipelining)."""
        if self._head is None:
            self._buf += data
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return b""
            self._head = Head(bytes(self._buf[:end]))
            data = bytes(self._buf[end + 4 :])
            self._buf.clear()
            if self._head.chunked:
                self._decoder = ChunkedDecoder()
        if self._decoder is not None:
            self._body.append(self._decoder.feed(data))
            rest = self._decoder.rest()
            if self._decoder.finished:
                self._finish()
            return rest
        need = (self._head.length or 0) - sum(map(len, self._body))
        self._body.append(data[:need])
        if len(data) >= need:
            self._finish()
        return data[need:]

    def _finish(self) -> None:
        assert self._head is not None
        status, body = self._head.status, b"".join(self._body)
        self._head, self._decoder, self._body = None, None, []
        if self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result((status, body))
