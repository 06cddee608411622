"""uvicorn's HTTP protocols, answering the requests they refuse themselves as problems.

uvicorn refuses a request it cannot parse before the app sees it: a malformed request line
or header, a URL over 64 KiB (httptools' URL parser), or with h11 a request head over
16 KiB arriving in pieces. Its answer is a text/plain 400; these subclasses send the same
400 as an RFC 9457 problem document, like every other error of the service. They override
one method of uvicorn's protocol classes (pyproject.toml bounds uvicorn's version).

They also enforce the connection limits (`app.server.connections`), which uvicorn lacks: its
``timeout_keep_alive`` runs only between requests, so a client that sends nothing, or one
header byte a second, holds its connection forever; httptools bounds neither a request
head's size nor the number of connections; and ``--limit-concurrency`` counts every
connection and task alike, so streams filling it would lock out publishes and
``/healthz``. `_Guarded` hooks five methods uvicorn's two HTTP protocols share
(``connection_made``, ``data_received``, ``on_response_complete``, ``connection_lost``)
and reads their request cycle (``cycle.more_body``, ``response_started``,
``response_complete``). Should a uvicorn release lack them, the protocols run as uvicorn
made them and a warning says the limits are off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.http.problems import MEDIA_TYPE
from app.server.connections import ConnectionGuard

logger = logging.getLogger("tailcast")

MAX_HEAD_BYTES = 128 * 1024
"""Largest request head (request line and headers) a connection may send."""
RETRY_AFTER = 5
"""Seconds a client refused for want of room should wait (``Retry-After``)."""
_LINGER = 1.0
"""Seconds a refused connection stays open after its answer, so the client reads it."""

_DETAIL = (
    "The request is not valid HTTP/1.1, or is over the server's limits (a URL over 64 KiB); "
    "nothing was done."
)
_BODY = orjson.dumps(
    {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": _DETAIL}
)
_HEADERS = [
    (b"content-type", MEDIA_TYPE.encode()),
    (b"content-length", str(len(_BODY)).encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"connection", b"close"),
]


def _problem(status: int, reason: str, detail: str, *extra: tuple[bytes, bytes]) -> bytes:
    """A whole HTTP/1.1 response carrying a problem document, closing the connection."""
    body = orjson.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": detail}
    )
    head = [b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())]
    headers = [
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"connection", b"close"),
        *extra,
    ]
    head += [b"%s: %s\r\n" % header for header in headers]
    return b"".join([*head, b"\r\n", body])


_TIMED_OUT = _problem(
    408, "Request Timeout", "The request did not arrive whole in time (request_timeout)."
)
_HEAD_TOO_LARGE = _problem(
    431,
    "Request Header Fields Too Large",
    f"The request head is over {MAX_HEAD_BYTES // 1024} KiB.",
)
_NO_ROOM = _problem(
    503,
    "Service Unavailable",
    "The server has no room for another connection (max_connections); retry later.",
    (b"retry-after", str(RETRY_AFTER).encode()),
)
_HOOKS = ("connection_made", "data_received", "on_response_complete", "connection_lost")


def _guard_of(app: object) -> ConnectionGuard | None:
    """The guard of the Tailcast service ``app`` is, or wraps (uvicorn's middleware)."""
    for _ in range(8):
        service = getattr(getattr(app, "state", None), "tailcast", None)
        if service is not None:
            guard: ConnectionGuard = service.connections
            return guard
        app = getattr(app, "app", None)
    return None


class _Guarded:
    """The connection limits, for uvicorn's HTTP protocols (mixed in before them).

    Its state lives in slots: uvicorn's protocol already has 27 attributes, and an
    instance dict past 30 keys stops sharing its keys with the class's other instances
    (1.3 KiB more per connection, every open stream included).
    """

    __slots__ = ("_counted", "_deadline", "_guard", "_head_bytes", "_refused", "_waits_since")
    _guard: ConnectionGuard | None
    _counted: bool
    _refused: bool
    _head_bytes: int
    _deadline: asyncio.TimerHandle | None
    _waits_since: Any  # the request cycle the deadline runs for (None: the first)
    # What the uvicorn protocol provides.
    transport: asyncio.Transport
    cycle: Any
    config: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._counted = self._refused = False
        self._head_bytes = 0
        self._deadline = self._waits_since = None
        super().connection_made(transport)  # type: ignore[misc]
        self._guard = guard = _guard_of(self.config.loaded_app) if _USABLE else None
        if guard is None:
            return
        if not guard.opened(self):
            self._refuse()
            return
        self._counted = True
        self._arm()

    def data_received(self, data: bytes) -> None:
        guard = self._guard
        if guard is None:
            super().data_received(data)  # type: ignore[misc]
            return
        if self._refused:
            return  # already answered; the request is not read
        awaiting = self._awaiting_head()
        if awaiting and self._deadline is None:
            self._arm()
        super().data_received(data)  # type: ignore[misc]
        if not awaiting:
            return
        if self._awaiting_head():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                guard.head_too_large()
                self.transport.write(_HEAD_TOO_LARGE)
                self.transport.close()
        else:
            self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self._guard is not None:
            self._disarm()
            self._head_bytes = 0
            self._guard.waits(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # type: ignore[misc]
        if self._guard is not None:
            self._disarm()
            self._guard.closed(self, counted=self._counted)

    # For the guard.

    def idle(self) -> bool:
        return self._awaiting_head()  # silent, kept alive, or still sending its head

    def close(self) -> None:
        self.transport.close()

    # The request deadline.

    def _awaiting_head(self) -> bool:
        """Whether the connection waits for (the rest of) a request head."""
        cycle = self.cycle
        return cycle is None or bool(cycle.response_complete)

    def _arm(self) -> None:
        assert self._guard is not None
        self._waits_since = self.cycle
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        """The request deadline passed: close the connection unless the request is whole."""
        self._deadline = None
        cycle = self.cycle
        began = cycle is not self._waits_since  # a request head arrived since the deadline
        if began and (not cycle.more_body or cycle.response_started):
            return  # a whole request arrived in time (or is being answered)
        if self.transport.is_closing():
            return
        assert self._guard is not None
        self._guard.timed_out()
        if began or self._head_bytes:  # part of a request arrived: say why it is refused
            self.transport.write(_TIMED_OUT)
        self.transport.close()

    def _refuse(self) -> None:
        """Answer 503 at once, read nothing, and close shortly after."""
        self._refused = True
        self.transport.write(_NO_ROOM)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(_LINGER, self.transport.close)


_USABLE = all(hasattr(H11Protocol, name) for name in _HOOKS)


class _LeanEvent(asyncio.Event):
    """An `asyncio.Event` whose waiters are a list (rarely more than one) not a deque."""

    def __init__(self, *, is_set: bool = False) -> None:
        super().__init__()
        self._waiters: list[asyncio.Future[bool]] = []  # type: ignore[assignment]
        if is_set:
            self.set()


class _Pipeline(list[Any]):
    """uvicorn's queue of pipelined requests, as a list: it calls ``appendleft`` and ``pop``."""

    __slots__ = ()

    def appendleft(self, entry: Any) -> None:
        self.insert(0, entry)


_LEAN = "_waiters" in vars(asyncio.Event())
"""Whether asyncio's events keep their waiters where `_LeanEvent` expects them."""


class ProblemH11Protocol(_Guarded, H11Protocol):
    """uvicorn's h11 protocol, refusing unparsable requests with a problem document."""

    def send_400_response(self, msg: str) -> None:
        for event in (
            h11.Response(status_code=400, headers=_HEADERS, reason=b"Bad Request"),
            h11.Data(data=_BODY),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


HTTP_PROTOCOL: type[asyncio.Protocol] = ProblemH11Protocol
"""The protocol class to give uvicorn: httptools' when it is installed (as uvicorn's
``auto`` would choose), else h11's."""

_HTTPTOOLS: type[asyncio.Protocol] | None = None

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is not built for every platform
    pass
else:

    class ProblemHttpToolsProtocol(_Guarded, HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing unparsable requests with a problem document.

        Lighter per connection, which matters for thousands of open streams: an empty
        ``collections.deque`` takes 624 bytes, and uvicorn keeps three per connection (the
        request pipeline, and the waiters of its two events). Lists do the same job here.
        """

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            if _LEAN and not self.pipeline:
                self.pipeline = _Pipeline()  # type: ignore[assignment]
                flow = self.flow
                if flow is not None and hasattr(flow, "_is_writable_event"):
                    flow._is_writable_event = _LeanEvent(is_set=not flow.write_paused)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            if _LEAN and self.cycle is not None:
                self.cycle.message_event = _LeanEvent()

        def send_400_response(self, msg: str) -> None:
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in [*self.server_state.default_headers, *_HEADERS]:
                head += [name, b": ", value, b"\r\n"]
            self.transport.write(b"".join([*head, b"\r\n", _BODY]))
            self.transport.close()

    HTTP_PROTOCOL = _HTTPTOOLS = ProblemHttpToolsProtocol
    _USABLE = _USABLE and all(hasattr(HttpToolsProtocol, name) for name in _HOOKS)

if not _USABLE:  # pragma: no cover - a uvicorn release whose protocols changed
    logger.warning(
        "uvicorn's HTTP protocols lack the hooks app/server/protocols.py uses: request_timeout, "
        "max_connections and the request head limit are not enforced"
    )


def http_protocol(name: str) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's ``--http`` choice (``auto``, ``httptools``, ``h11``)."""
    if name == "h11":
        return ProblemH11Protocol
    if name == "httptools":
        if _HTTPTOOLS is None:
            raise RuntimeError("http=httptools, but httptools is not installed")
        return _HTTPTOOLS
    return HTTP_PROTOCOL
