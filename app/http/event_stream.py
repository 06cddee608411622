"""The `/stream` response: a subscription's events written as Server-Sent Events.

Every frame comes from the codec (`app.http.sse`). Two ways to write them:

- Under uvicorn with httptools, built for fan-out (`app.server.uvicorn_internals`). A stream's own
  task writes its replay and catch-ups, each ready batch in one send; once it has caught
  up it hands itself to the `Fanout`, which writes live items to every such stream
  without waking their tasks. Heartbeats come from one timer for all streams (a nudge of
  the live log), and stalled sends are found by one sweep (`watch_streams`), not by a
  deadline per send.
- Under any other server (uvicorn with h11 included), through sse-starlette's
  `EventSourceResponse` over the subscription: its ping sends the heartbeat, its
  ``send_timeout`` drops a client that stopped reading, and its shutdown handling ends
  the stream (``shutdown_event``, set by `Service.begin_shutdown` or by the server's exit,
  with ``shutdown_grace`` to finish).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import anyio
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.http.fanout import Round
from app.http.head import is_head
from app.http.service import Service
from app.http.sse import HEARTBEAT, heartbeat, joined, retry_field
from app.server.uvicorn_internals import Connection, framed
from streaming import StreamId
from streaming.subscription import Subscription

logger = logging.getLogger("tailcast")

SERVER_SEND = "tailcast.server_send"
"""Scope key of the ASGI server's own ``send``, set by the app past middleware (see
`app.http.application`); on the app's fast path ``send`` itself carries it (`server_send`)."""


def server_send(scope: Scope, send: Send) -> Send:
    """The ASGI server's own ``send`` for this response, past the app's wrappers."""
    found: Send | None = scope.get(SERVER_SEND) or getattr(send, "server_send", None)
    return found or send


_HEARTBEAT_CHUNK = framed(HEARTBEAT)
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
        *,
        last: int | None = None,
    ) -> None:
        super().__init__(status_code=200)
        self.raw_headers = _HEADERS  # shared: the response start sends a copy
        self._service = service
        self._topics = topics
        self._since = since
        self._limit = limit
        self._last = last
        self._heartbeat_gap = service.settings.heartbeat / 2
        self._connection: Connection | None = None
        self._shutdown: anyio.Event | None = None  # through `EventSourceResponse` only
        self._subscription: Subscription | None = None
        self._receive: Receive | None = None
        self._parked = False
        self._aborted = False
        self.sending_since = 0.0
        """When the send under way began (`time.monotonic`), or 0 when none is."""
        self.last_write = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_head(scope):  # the headers are the answer; no stream opens
            await send(self._start())
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        # Body chunks go to the server directly: middleware has seen the response start,
        # and must not rewrite a stream's body (no compression).
        direct = server_send(scope, send)
        self._connection = Connection.of(direct)
        service = self._service
        service.streams.add(self)
        try:
            if self._connection is None:
                await self._respond_generic(scope, receive, send, direct)
                return
            await send(self._start())
            self._receive = receive
            # One task per stream: it watches for the disconnect while parked. An abort
            # closes the connection, which ends a send under way and the parked wait.
            await self._pump(direct)
        finally:
            service.streams.discard(self)
        if not self._aborted:  # after a disconnect uvicorn drops this write
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _start(self) -> Message:
        # A copy of the headers: middleware may change them in place.
        return {"type": "http.response.start", "status": 200, "headers": list(self.raw_headers)}

    async def _respond_generic(
        self, scope: Scope, receive: Receive, send: Send, direct: Send
    ) -> None:
        """Serve the stream through `EventSourceResponse`: any server but uvicorn's httptools."""
        settings = self._service.settings
        self._shutdown = anyio.Event()
        response = EventSourceResponse(
            self._frames(),
            ping=settings.heartbeat / 2,  # within the fast path's gaps: a half to 5/6 of it
            ping_message_factory=heartbeat,
            send_timeout=settings.send_timeout,
            shutdown_event=self._shutdown,
            shutdown_grace_period=settings.shutdown_grace,
        )
        response.raw_headers = list(self.raw_headers)  # the same headers as the fast path

        async def start_then_direct(message: Message) -> None:
            await (send if message["type"] == "http.response.start" else direct)(message)

        try:
            await response(scope, receive, start_then_direct)
        except SendTimeoutError:
            logger.warning(
                "dropping a client that read nothing for %.0f s (send_timeout)",
                settings.send_timeout,
            )

    async def _frames(self) -> AsyncIterator[bytes]:
        """The subscription's events as frames, each ready batch as one body part, until
        it ends or shutdown begins."""
        subscription = await self._subscribe()
        shutdown = self._shutdown
        assert shutdown is not None
        head = retry_field(self._service.settings.retry_ms)
        try:
            while (batch := subscription.poll()) is not None:
                if batch:
                    yield joined(batch, head)
                    head = b""
                elif shutdown.is_set():
                    return
                else:
                    await subscription.wait()  # items, a nudge, or the log's close
        finally:
            subscription.close()
            logger.debug("stream closed: topics=%s", sorted(self._topics))

    @property
    def topics(self) -> frozenset[str]:
        return self._topics

    def abort(self) -> None:
        """Drop a stream whose client stopped reading (its send is stalled)."""
        self._aborted = True
        if self._connection is not None:
            self._connection.abort()

    def shut_down(self) -> None:
        """Shutdown began: end the stream (through `EventSourceResponse`'s own handling;
        on the fast path, the log's close ends it)."""
        if self._shutdown is not None:
            self._shutdown.set()

    def flush(self, current: Round) -> bool:
        """For the `Fanout`: write what is ready without blocking, or hand the stream back."""
        connection, subscription = self._connection, self._subscription
        if connection is None or subscription is None or not connection.writable:
            return False
        batch = subscription.poll(current.batches)
        if batch is None:
            return False
        if batch:
            connection.write(current.chunk(batch))
        elif current.now - self.last_write >= self._heartbeat_gap:
            connection.write(_HEARTBEAT_CHUNK)
        else:
            return True
        self.last_write = current.now
        return self._limit is None or not subscription.exhausted

    def resume(self) -> None:
        """For the `Fanout`: it let go of the stream; its own task takes over."""
        if self._parked and self._connection is not None:
            self._parked = False
            self._connection.wake()

    async def _subscribe(self) -> Subscription:
        service = self._service
        await service.backend.sync(self._since)
        subscription = service.backend.subscribe(
            self._topics, self._since, self._limit, last=self._last
        )
        self._subscription = subscription
        logger.debug("stream opened: topics=%s since=%s", sorted(self._topics), self._since)
        return subscription

    async def _pump(self, send: Send) -> None:
        """Write the subscription on the fast path: replay and catch-ups from this task,
        live items from the fan-out while parked."""
        service = self._service
        subscription = await self._subscribe()
        # The retry hint rides in the first event's block: a block holding only `retry:`
        # is not an event, yet some clients dispatch it as an empty message.
        head = retry_field(service.settings.retry_ms)
        self.last_write = time.monotonic()
        receive = self._receive
        assert receive is not None
        try:
            connection = self._connection
            assert connection is not None
            while (batch := subscription.poll()) is not None:
                if batch:
                    chunk = joined(batch, head)
                    head = b""
                elif time.monotonic() - self.last_write >= self._heartbeat_gap:
                    chunk = HEARTBEAT
                elif connection.disconnected:
                    break
                elif connection.writable:
                    # Parked: the fan-out writes live items until it hands the stream back
                    # (`resume` ends this wait through `Connection.wake`) or the client
                    # leaves. Inline, not a coroutine of its own: 232 bytes per idle stream.
                    self._park(True)
                    try:
                        while self._parked:
                            if (await receive())["type"] == "http.disconnect":
                                return
                    finally:
                        self._park(False)
                    continue
                else:
                    chunk = b""  # nothing to send: wait for the socket to drain
                await self._send(send, chunk)
        finally:
            subscription.close()
            logger.debug("stream closed: topics=%s", sorted(self._topics))

    def _park(self, parked: bool) -> None:
        """Hand the stream to the fan-out, or take it back."""
        if parked:
            self._service.fanout.add(self)
        else:
            self._service.fanout.discard(self)
        self._parked = parked

    async def _send(self, send: Send, chunk: bytes) -> None:
        # The sweep in `watch_streams` aborts a send that stays under way too long.
        self.sending_since = time.monotonic()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.last_write = self.sending_since
        self.sending_since = 0.0


async def watch_streams(service: Service) -> None:
    """For the service's lifetime: tick heartbeats and drop clients that stopped reading
    (on the fast path: `EventSourceResponse` does both for the other streams).

    A stream sends a heartbeat at the first tick after it has been quiet for half of
    ``heartbeat``; ticking every third of it keeps every gap under ``heartbeat`` with room
    for late timers.
    """
    settings = service.settings
    tick = settings.heartbeat / 3
    period = min(tick, settings.send_timeout / 4)
    next_tick = time.monotonic() + tick
    while True:
        await anyio.sleep(period)
        now = time.monotonic()
        # Timers may wake a little early (uvloop rounds to whole milliseconds): a strict
        # `now >= next_tick` would skip the whole tick.
        if now >= next_tick - period / 2:
            next_tick = now + tick
            service.backend.replica.broadcast.nudge()
            service.connections.report()
        for stream in list(service.streams):
            if stream.sending_since and now - stream.sending_since > settings.send_timeout:
                logger.warning(
                    "dropping a client that read nothing for %.0f s (send_timeout)",
                    settings.send_timeout,
                )
                stream.abort()
