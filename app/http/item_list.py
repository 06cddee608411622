"""The `GET /items` response: cached items as one JSON array, written as the client reads it.

The array is never built whole. Items are read from the cache a page at a time, after
the last id written, up to the newest id issued when the response began, and each chunk
is written only once the connection has taken the previous one. A client that stops
reading therefore holds one chunk and the socket's buffer, not a copy of the cache, and
it is dropped once a write has waited `send_timeout` seconds, as a stalled stream is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import anyio.lowlevel
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.event_stream import SERVER_SEND
from app.http.head import is_head
from app.http.service import Service
from app.server.uvicorn_internals import Connection
from streaming import Item, StreamId

logger = logging.getLogger("tailcast")

PAGE_ITEMS = 256
"""Items read from the cache at a time."""
CHUNK_BYTES = 64 * 1024
"""Bytes gathered before a write."""
_HEADERS = [(b"content-type", b"application/json")]


class ItemList(Response):
    """The cached items after ``since`` on ``topics`` (the newest ``last`` of them), at most
    ``limit``, as a JSON array."""

    media_type = "application/json"

    def __init__(
        self,
        service: Service,
        topics: frozenset[str],
        since: StreamId | None,
        limit: int | None,
        *,
        last: int | None = None,
    ) -> None:
        super().__init__(status_code=200)
        self.raw_headers = list(_HEADERS)
        self._service = service
        self._topics = topics
        self._since = since
        self._limit = limit
        self._last = last

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        if is_head(scope):  # the headers are the answer: read nothing
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        chunk, separator = bytearray(b"["), b""
        for item in self._cached():
            chunk += separator
            chunk += item.json
            separator = b","
            if len(chunk) >= CHUNK_BYTES:
                if not await self._write(scope, receive, send, bytes(chunk)):
                    return
                chunk = bytearray()
        chunk += b"]"
        await send({"type": "http.response.body", "body": bytes(chunk), "more_body": False})

    def _cached(self) -> Iterator[Item]:
        """The items, read from the cache a page at a time, lazily: the cache may change
        between pages, so each page starts after the last id read. Items published after
        the response began are left out, so the array ends."""
        backend = self._service.backend
        cutoff = backend.replica.last_id
        after, remaining = self._since, self._limit
        if self._last is not None:
            # The newest `last` (of which the first `limit`): they begin after this id.
            after = backend.replica.window_start(after, self._topics, self._last)
            remaining = self._last if remaining is None else min(remaining, self._last)
        while cutoff is not None and remaining != 0:
            wanted = PAGE_ITEMS if remaining is None else min(PAGE_ITEMS, remaining)
            page = backend.items(self._topics, after, wanted)
            for item in page:
                if item.id > cutoff:
                    return
                yield item
            if len(page) < wanted:
                return
            after = page[-1].id
            if remaining is not None:
                remaining -= len(page)

    async def _write(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> bool:
        """Write ``body`` once the connection takes it; False if the client was dropped."""
        timeout = self._service.settings.send_timeout
        with anyio.move_on_after(timeout):
            await send({"type": "http.response.body", "body": body, "more_body": True})
            # Let other requests run between chunks, also when the client reads fast.
            await anyio.lowlevel.checkpoint()
            return True
        logger.warning(
            "dropping a GET /items client that read nothing for %.0f s (send_timeout)", timeout
        )
        await _drop(scope, receive)
        return False


async def _drop(scope: Scope, receive: Receive) -> None:
    """Close the connection of a client that stopped reading, unsent data and all."""
    connection = Connection.of(scope.get(SERVER_SEND))
    if connection is None:
        return  # another server: returning unfinished makes it close the connection
    connection.abort()
    with anyio.move_on_after(1):  # the server notices the close on its next turn
        while (await receive())["type"] != "http.disconnect":
            pass
