"""The fence around the fan-out's direct writes to uvicorn's httptools connections.

The fan-out (`app.http.fanout`) writes live items to every caught-up stream without waking the
stream's task: it writes chunks, already framed for the chunked body, straight to the
connection's transport. That needs uvicorn's private request cycle, so everything it reads
of it is here, checked before use (`Connection.of`); when a check fails, or the server is
not uvicorn with httptools, the stream is served by sse-starlette's `EventSourceResponse`
through the server's ASGI ``send`` instead (`app.http.event_stream`), the same bytes at a
lower rate.

What is read of ``uvicorn.protocols.http.httptools_impl.RequestResponseCycle`` (the
``__self__`` of the ASGI ``send`` it hands the app): ``transport`` (its ``write`` and
``abort``), ``flow.write_paused``, ``disconnected``, ``message_event`` (set to end a
``receive`` under way) and ``chunked_encoding`` (None before the response starts, True
after: the body is chunked, as it is for a response without a length, so a chunk written
directly is well formed). Checked against uvicorn `CHECKED` (pyproject.toml bounds
it; tests/test_uvicorn_internals.py fails on a uvicorn outside the bound, or whose cycle
the checks reject).

uvicorn's internals are also used, outside this fence, by `app.server.protocols` (subclasses of
``H11Protocol`` and ``HttpToolsProtocol`` overriding ``send_400_response``,
``connection_made``, ``data_received``, ``on_response_complete``, ``connection_lost`` and
``on_headers_complete``, reading ``cycle.more_body``, ``response_started``,
``response_complete``, ``pipeline``, ``flow._is_writable_event``, ``conn``,
``server_state``; each checked, with a fallback to uvicorn's own behaviour) and
`app.server.runner` (``Server.shutdown``, public in form if not documented).
"""

from __future__ import annotations

from typing import Any

CHECKED = ("0.34", "0.55")
"""The uvicorn releases (first, last) whose request cycle this fence was checked against."""

_HTTPTOOLS_CYCLE = "uvicorn.protocols.http.httptools_impl"
_CYCLE_ATTRIBUTES = (
    "transport",
    "flow",
    "disconnected",
    "message_event",
    "chunked_encoding",
)


def framed(body: bytes) -> bytes:
    """``body`` as one chunk of an HTTP/1.1 chunked body: size line, data, CRLF."""
    return b"%x\r\n%s\r\n" % (len(body), body)


def framed_parts(parts: list[bytes]) -> bytes:
    """The body ``parts`` make, as one chunk (`framed`), joined in one copy. ``parts``
    gets the chunk's size line and end: pass a list of your own."""
    parts.insert(0, b"%x\r\n" % sum(map(len, parts)))
    parts.append(b"\r\n")
    return b"".join(parts)


def usable_cycle(cycle: object) -> bool:
    """Whether ``cycle`` is an httptools request cycle with everything `Connection` uses,
    whose response is not started yet or started as a chunked body."""
    if type(cycle).__module__ != _HTTPTOOLS_CYCLE:
        return False
    if not all(hasattr(cycle, name) for name in _CYCLE_ATTRIBUTES):
        return False  # a uvicorn whose internals moved
    flow: Any = getattr(cycle, "flow", None)
    chunked: Any = getattr(cycle, "chunked_encoding", None)
    return hasattr(flow, "write_paused") and chunked in (None, True)


class Connection:
    """Non-blocking chunk writes to a uvicorn (httptools) HTTP/1.1 response under way.

    Built from the server's ASGI ``send`` (a bound method of uvicorn's request cycle),
    after the response started; `of` returns None for any other server.
    """

    __slots__ = ("_cycle",)

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle

    @classmethod
    def of(cls, send: object) -> Connection | None:
        cycle = getattr(send, "__self__", None)
        return cls(cycle) if usable_cycle(cycle) else None

    @property
    def disconnected(self) -> bool:
        return bool(self._cycle.disconnected)

    @property
    def writable(self) -> bool:
        """Whether a write now goes out without queueing behind a congested socket."""
        cycle = self._cycle
        return not (cycle.disconnected or cycle.flow.write_paused)

    def write(self, data: bytes) -> None:
        """Write body chunks already framed for the chunked response body (`framed`)."""
        self._cycle.transport.write(data)

    def abort(self) -> None:
        """Drop the connection now, unsent data and all (a client that stopped reading)."""
        self._cycle.transport.abort()

    def wake(self) -> None:
        """End a wait for the request's next message (ASGI ``receive``) under way: it
        returns an empty body part, or the disconnect if the client left meanwhile."""
        self._cycle.message_event.set()
