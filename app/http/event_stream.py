"""The `/stream` response: a subscription's events written as Server-Sent Events.

Built for fan-out. A stream's own task writes its replay and catch-ups, each ready batch
in one send; once it has caught up it hands itself to the `Fanout`, which writes live
items to every such stream without waking their tasks. Heartbeats come from one timer
for all streams (a nudge of the live log), and stalled sends are found by one sweep,
not by a deadline per send.
"""

from __future__ import annotations

import logging
import time

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.fanout import Connection, Round, framed, joined
from app.http.head import is_head
from app.http.service import Service
from streaming import StreamId, retry_field
from streaming.subscription import Subscription

logger = logging.getLogger("tailcast")

SERVER_SEND = "tailcast.server_send"
"""Scope key of the ASGI server's own ``send``, set by the app past middleware (see
`app.http.application`); on the app's fast path ``send`` itself carries it (`server_send`)."""


def server_send(scope: Scope, send: Send) -> Send:
    """The ASGI server's own ``send`` for this response, past the app's wrappers."""
    found: Send | None = scope.get(SERVER_SEND) or getattr(send, "server_send", None)
    return found or send


_HEARTBEAT = b": heartbeat\n\n"
_HEARTBEAT_CHUNK = framed(_HEARTBEAT)
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
        self._scope: anyio.CancelScope | None = None  # without a `Connection` only
        self._connection: Connection | None = None
        self._subscription: Subscription | None = None
        self._receive: Receive | None = None
        self._parked = False
        self._aborted = False
        self.sending_since = 0.0
        """When the send under way began (`time.monotonic`), or 0 when none is."""
        self.last_write = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self._service
        # A copy: middleware may change them in place.
        start = {"type": "http.response.start", "status": 200, "headers": list(self.raw_headers)}
        await send(start)
        del start  # not kept for as long as the stream stays open
        if is_head(scope):  # the headers are the answer; no stream opens
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        # Body chunks go to the server directly: middleware has seen the response start,
        # and must not rewrite a stream's body (no compression).
        direct = server_send(scope, send)
        self._connection = Connection.of(direct)
        self._receive = receive
        service.streams.add(self)
        try:
            if self._connection is not None:
                # One task per stream: it watches for the disconnect while parked. An abort
                # closes the connection, which ends a send under way and the parked wait.
                await self._pump(direct)
            else:
                async with anyio.create_task_group() as tasks:
                    self._scope = tasks.cancel_scope
                    tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
                    await self._pump(direct)
                    tasks.cancel_scope.cancel()
        finally:
            service.streams.discard(self)
        if not self._aborted:  # after a disconnect uvicorn drops this write
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    @property
    def topics(self) -> frozenset[str]:
        return self._topics

    def abort(self) -> None:
        """Drop a stream whose client stopped reading (its send is stalled)."""
        self._aborted = True
        if self._connection is not None:
            self._connection.abort()
        elif self._scope is not None:
            self._scope.cancel()  # without a connection, uvicorn closes it on return

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

    async def _pump(self, send: Send) -> None:
        service = self._service
        await service.backend.sync(self._since)
        subscription = service.backend.subscribe(
            self._topics, self._since, self._limit, last=self._last
        )
        self._subscription = subscription
        logger.debug("stream opened: topics=%s since=%s", sorted(self._topics), self._since)
        # The retry hint rides in the first event's block: a block holding only `retry:`
        # is not an event, yet some clients dispatch it as an empty message.
        head = retry_field(service.settings.retry_ms)
        self.last_write = time.monotonic()
        receive = self._receive
        assert receive is not None
        try:
            connection = self._connection
            while (batch := subscription.poll()) is not None:
                if batch:
                    chunk = joined(batch, head)
                    head = b""
                elif time.monotonic() - self.last_write >= self._heartbeat_gap:
                    chunk = _HEARTBEAT
                elif connection is None:
                    await subscription.wait()
                    continue
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


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def watch_streams(service: Service) -> None:
    """For the service's lifetime: tick heartbeats and drop clients that stopped reading.

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
