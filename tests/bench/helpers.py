"""Loopback servers for the load client's tests: canned bytes cut into random pieces, and
one that answers POSTs and notes what it received."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast


@asynccontextmanager
async def playing(raw: bytes, seed: int = 7, requests: int = 1) -> AsyncIterator[tuple[str, int]]:
    """A server that reads ``requests`` request heads on a connection, then answers with
    ``raw`` cut into random pieces (each flushed on its own) until the client closes."""
    pieces = random.Random(seed)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(requests):
            await reader.readuntil(b"\r\n\r\n")
        position = 0
        while position < len(raw):
            size = pieces.choice([1, 2, 3, 5, 13, 64, 700, 4096])
            writer.write(raw[position : position + size])
            position += size
            await writer.drain()
            await asyncio.sleep(0)
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield "127.0.0.1", server.sockets[0].getsockname()[1]


@dataclass(slots=True)
class Received:
    """What an `answering` server saw: each connection's request bodies, in order."""

    bodies: list[list[bytes]] = field(default_factory=list)
    most_in_flight: int = 0
    """The most requests one connection had sent before their responses were written."""


class _Answering(asyncio.Protocol):
    def __init__(self, received: Received, status: int, delay: float) -> None:
        self._received = received
        self._status = status
        self._delay = delay
        self._bodies: list[bytes] = []
        self._buffer = b""
        self._in_flight = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._received.bodies.append(self._bodies)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = self._buffer[:end].lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            if len(self._buffer) < end + 4 + length:
                return
            self._bodies.append(self._buffer[end + 4 : end + 4 + length])
            self._buffer = self._buffer[end + 4 + length :]
            self._in_flight += 1
            received = self._received
            received.most_in_flight = max(received.most_in_flight, self._in_flight)
            asyncio.get_running_loop().call_later(self._delay, self._answer)

    def _answer(self) -> None:
        self._in_flight -= 1
        body = b'{"id":"1-0"}'
        head = b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n" % (self._status, len(body))
        assert self._transport is not None
        if not self._transport.is_closing():
            self._transport.write(head + body)


@asynccontextmanager
async def answering(
    status: int = 201, delay: float = 0.0
) -> AsyncIterator[tuple[str, int, Received]]:
    """A server answering every POST with ``status`` after ``delay`` s, noting what came."""
    received = Received()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Answering(received, status, delay), "127.0.0.1", 0)
    async with server:
        yield "127.0.0.1", server.sockets[0].getsockname()[1], received
