"""A loopback server for the load client's tests: canned bytes, cut into random pieces."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


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
