"""The `/stream` response: a subscription's events written as Server-Sent Events.

Built for fan-out: each wake-up writes every event ready for the subscriber in one send,
and nothing else runs per event. Heartbeats come from one timer for all streams (a nudge
of the live log), and stalled sends are found by one sweep, not a deadline per send.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from streaming import StreamId, retry_field
from streaming.merge import Event

from .service import Service

logger = logging.getLogger("tailcast")

_HEARTBEAT = b": heartbeat\n\n"
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events through unbuffered
]


class EventStream(Response):
    """An endless SSE response for one subscription; it ends with the subscription.

    Subscribing happens when the response starts, not when it is built, so whatever ends
    the response also releases the subscription.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        service: Service,
        topics: frozenset[str],
        since: StreamId | None,
        limit: int | None,
    ) -> None:
        super().__init__(status_code=200, headers=None)
        self.raw_headers = list(_HEADERS)
        self._service = service
        self._topics = topics
        self._since = since
        self._limit = limit
        self._scope: anyio.CancelScope | None = None
        self._aborted = False
        self.sending_since = 0.0
        """When the send under way began (`time.monotonic`), or 0 when none is."""
        self.last_write = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self._service
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        service.streams.add(self)
        try:
            async with anyio.create_task_group() as tasks:
                self._scope = tasks.cancel_scope
                tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
                await self._pump(send)
                tasks.cancel_scope.cancel()
        finally:
            service.streams.discard(self)
        # After a disconnect this is a no-op: uvicorn drops writes to a closed connection.
        if not self._aborted:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def abort(self) -> None:
        """Stop a stream whose client stopped reading (its send is stalled).

        The response is left incomplete, so uvicorn closes the connection.
        """
        self._aborted = True
        if self._scope is not None:
            self._scope.cancel()

    async def _pump(self, send: Send) -> None:
        service = self._service
        if self._since is not None:
            await service.backend.sync_to(self._since)
        subscription = service.backend.subscribe(self._topics, self._since, self._limit)
        logger.debug("stream opened: topics=%s since=%s", sorted(self._topics), self._since)
        # The retry hint rides in the first event's block: a block holding only `retry:`
        # is not an event, yet some clients dispatch it as an empty message.
        head = retry_field(service.settings.retry_ms)
        self.last_write = time.monotonic()
        try:
            while (batch := subscription.poll()) is not None:
                if batch:
                    chunk = _chunk(batch, head)
                    head = b""
                elif self._heartbeat_due():
                    chunk = _HEARTBEAT
                else:
                    await subscription.wait()
                    continue
                await self._send(send, chunk)
        finally:
            subscription.close()
            logger.debug("stream closed: topics=%s", sorted(self._topics))

    async def _send(self, send: Send, chunk: bytes) -> None:
        # The sweep in `watch_streams` aborts a send that stays under way too long.
        self.sending_since = time.monotonic()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.last_write = self.sending_since
        self.sending_since = 0.0

    def _heartbeat_due(self) -> bool:
        # Heartbeat ticks come every half interval: the gap between writes stays within one.
        return time.monotonic() - self.last_write >= self._service.settings.heartbeat / 2


def _chunk(batch: Sequence[Event], head: bytes) -> bytes:
    """One write for the whole batch; a lone event's shared frame goes out as is."""
    if len(batch) == 1 and not head:
        return batch[0].frame
    frames = [event.frame for event in batch]
    if head:
        frames.insert(0, head)
    return b"".join(frames)


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def watch_streams(service: Service) -> None:
    """For the service's lifetime: tick heartbeats and drop clients that stopped reading."""
    settings = service.settings
    period = min(settings.heartbeat / 2, settings.send_timeout / 4)
    next_tick = time.monotonic() + settings.heartbeat / 2
    while True:
        await anyio.sleep(period)
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + settings.heartbeat / 2
            service.backend.replica.broadcast.nudge()
        for stream in list(service.streams):
            if stream.sending_since and now - stream.sending_since > settings.send_timeout:
                logger.warning(
                    "dropping a client that read nothing for %.0f s (send_timeout)",
                    settings.send_timeout,
                )
                stream.abort()
