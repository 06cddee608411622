"""The policy of uvicorn's HTTP connections: problem answers and connection limits.

uvicorn refuses a request it cannot parse before the app sees it: a malformed request line
or header, a URL over 64 KiB (httptools' URL parser), or with h11 a request head over
16 KiB arriving in pieces. Its answer is a text/plain 400; these protocols send the same
400 as an RFC 9457 problem document, like every other error of the service.

They also enforce the connection limits (`app.server.connections`), which uvicorn lacks: its
``timeout_keep_alive`` runs only between requests, so a client that sends nothing, or one
header byte a second, holds its connection forever; httptools bounds neither a request
head's size nor the number of connections; and ``--limit-concurrency`` counts every
connection and task alike, so streams filling it would lock out publishes and
``/healthz``. `ConnectionLimits` is a connection's policy, told by the fence around
uvicorn's internals (`app.server.uvicorn_internals`, the only module that touches them)
what happens to the connection. Should a uvicorn release lack the hooks it is told from,
the protocols run as uvicorn made them and a warning says the limits are off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson

from app.http.problems import MEDIA_TYPE
from app.server.connections import ConnectionGuard
from app.server.uvicorn_internals import HOOKED, H11Connection, Headers, HttpConnection

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


def _problem_parts(
    status: int, reason: str, detail: str, *extra: tuple[bytes, bytes]
) -> tuple[Headers, bytes]:
    """The headers and body of a response carrying a problem document, closing the
    connection."""
    body = orjson.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": detail}
    )
    headers = [
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"connection", b"close"),
        *extra,
    ]
    return headers, body


def _problem(status: int, reason: str, detail: str, *extra: tuple[bytes, bytes]) -> bytes:
    """A whole HTTP/1.1 response carrying a problem document, closing the connection."""
    headers, body = _problem_parts(status, reason, detail, *extra)
    head = [b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())]
    head += [b"%s: %s\r\n" % header for header in headers]
    return b"".join([*head, b"\r\n", body])


_BAD_REQUEST = _problem_parts(400, "Bad Request", _DETAIL)


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


def _guard_of(app: object) -> ConnectionGuard | None:
    """The guard of the Tailcast service ``app`` is, or wraps (uvicorn's middleware)."""
    for _ in range(8):
        service = getattr(getattr(app, "state", None), "tailcast", None)
        if service is not None:
            guard: ConnectionGuard = service.connections
            return guard
        app = getattr(app, "app", None)
    return None


class ConnectionLimits:
    """The connection limits, for one connection (a `ConnectionPolicy` of
    `app.server.uvicorn_internals`; the guard's `Guarded`).

    Its state lives in slots: there is one per connection, every open stream included.
    """

    __slots__ = ("_connection", "_deadline", "_guard", "_head_bytes", "_refused", "_waits_since")

    def __init__(self, connection: HttpConnection, guard: ConnectionGuard) -> None:
        self._connection = connection
        self._guard = guard
        self._refused = False
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._waits_since: object = None  # the request the deadline runs for (None: the first)

    @classmethod
    def open(cls, app: object, connection: HttpConnection) -> ConnectionLimits | None:
        """The limits of a new ``connection`` to ``app``: counted, or refused at once with a
        503 when there is no room. None when ``app`` is not the Tailcast service."""
        guard = _guard_of(app)
        if guard is None:
            return None
        limits = cls(connection, guard)
        if guard.opened(limits):
            limits._arm()
        else:
            limits._refuse()
        return limits

    def received(self, data: bytes, parse: Callable[[bytes], None]) -> None:
        if self._refused:
            return  # already answered; the request is not read
        connection = self._connection
        awaiting = connection.awaiting_head()
        if awaiting and self._deadline is None:
            self._arm()
        parse(data)
        if not awaiting:
            return
        if connection.awaiting_head():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not connection.closing():
                self._guard.head_too_large()
                connection.answer(_HEAD_TOO_LARGE)
        else:
            self._head_bytes = 0

    def answered(self) -> None:
        self._disarm()
        self._head_bytes = 0
        self._guard.waits(self)

    def lost(self) -> None:
        self._disarm()
        self._guard.closed(self, counted=not self._refused)

    def unparsable(self) -> None:
        self._guard.unparsable()

    # For the guard.

    def idle(self) -> bool:
        return self._connection.awaiting_head()  # silent, kept alive, or still sending its head

    def close(self) -> None:
        self._connection.close()

    # The request deadline.

    def _arm(self) -> None:
        self._waits_since = self._connection.request()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        """The request deadline passed: close the connection unless the request is whole."""
        self._deadline = None
        connection = self._connection
        began = connection.request() is not self._waits_since  # a request head arrived since
        if began and connection.request_whole():
            return  # a whole request arrived in time (or is being answered)
        if connection.closing():
            return
        self._guard.timed_out()
        if began or self._head_bytes:  # part of a request arrived: say why it is refused
            connection.answer(_TIMED_OUT)
        else:
            connection.close()

    def _refuse(self) -> None:
        """Answer 503 at once, read nothing, and close shortly after."""
        self._refused = True
        self._connection.refuse(_NO_ROOM, _LINGER)


class ProblemH11Protocol(H11Connection):
    """uvicorn's h11 protocol with the connection limits, refusing unparsable requests with a
    problem document."""

    bad_request = _BAD_REQUEST
    open_policy = staticmethod(ConnectionLimits.open)


HTTP_PROTOCOL: type[asyncio.Protocol] = ProblemH11Protocol
"""The protocol class to give uvicorn: httptools' when it is installed (as uvicorn's
``auto`` would choose), else h11's."""

_HTTPTOOLS: type[asyncio.Protocol] | None = None

try:
    from app.server.uvicorn_internals import HttpToolsConnection
except ImportError:  # pragma: no cover - httptools is not built for every platform
    pass
else:

    class ProblemHttpToolsProtocol(HttpToolsConnection):
        """uvicorn's httptools protocol with the connection limits, refusing unparsable
        requests with a problem document."""

        bad_request = _BAD_REQUEST
        open_policy = staticmethod(ConnectionLimits.open)

    HTTP_PROTOCOL = _HTTPTOOLS = ProblemHttpToolsProtocol

if not HOOKED:  # pragma: no cover - a uvicorn release whose protocols changed
    logger.warning(
        "uvicorn's HTTP protocols lack the hooks app/server/uvicorn_internals.py calls the "
        "connection limits from: request_timeout, max_connections and the request head limit "
        "are not enforced"
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
