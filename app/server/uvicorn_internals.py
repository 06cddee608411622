"""The fence: everything the service reads or overrides of uvicorn's private internals.

Two things need them, and nothing outside this module touches them:

- The fan-out (`app.http.fanout`) writes live items to every caught-up stream without
  waking the stream's task: it writes chunks, already framed for the chunked body
  (`framed`, `framed_parts`), straight to the connection's transport (`Connection`). That
  needs uvicorn's private request cycle, checked before use (`Connection.of`); when a
  check fails, or the server is not uvicorn with httptools, the stream is served by
  sse-starlette's `EventSourceResponse` through the server's ASGI ``send`` instead
  (`app.http.event_stream`), the same bytes at a lower rate.
- A connection's policy (`ConnectionPolicy`: the connection limits and problem answers of
  `app.server.protocols`) hooks uvicorn's HTTP protocols, through subclasses of them
  (`H11Connection`, `HttpToolsConnection`) that tell the policy what happens to the
  connection and offer it what it may do (`HttpConnection`). Should a uvicorn release lack
  the hooks (`HOOKED`), the protocols run as uvicorn made them, without a policy.

What is read of ``uvicorn.protocols.http.httptools_impl.RequestResponseCycle`` (the
``__self__`` of the ASGI ``send`` it hands the app): ``transport`` (its ``write`` and
``abort``), ``flow.write_paused``, ``disconnected``, ``message_event`` (set to end a
``receive`` under way) and ``chunked_encoding`` (None before the response starts, True
after: the body is chunked, as it is for a response without a length, so a chunk written
directly is well formed).

What the protocol subclasses override of ``H11Protocol`` and ``HttpToolsProtocol``:
``connection_made``, ``data_received``, ``on_response_complete`` and ``connection_lost``
(to call the policy), ``send_400_response`` (to tell the policy and send its 400), and, with
httptools, ``on_headers_complete``. What they read: ``config.loaded_app``, ``transport``,
``cycle`` (its ``more_body``, ``response_started`` and ``response_complete``), with h11
``conn`` (h11's connection, to write the 400), with httptools
``server_state.default_headers`` and, to make each connection lighter (lists for deques),
``pipeline``, ``flow._is_writable_event`` (by ``flow.write_paused``) and each request's
``cycle.message_event``, which they replace. While a policy is in force, the warning
uvicorn logs for each request it cannot parse (``uvicorn.error``, `_PARSE_WARNING`) is
dropped: the policy is told of each instead.

Checked against uvicorn `CHECKED` (pyproject.toml bounds it; tests/test_uvicorn_internals.py
fails on a uvicorn outside the bound, whose cycle the checks reject, or whose protocols
lack the hooks). `app.server.runner` subclasses ``uvicorn.Server`` for its ``shutdown``,
public in form if not documented.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

CHECKED = ("0.34", "0.55")
"""The uvicorn releases (first, last) whose internals this fence was checked against."""

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


Headers = list[tuple[bytes, bytes]]


class HttpConnection(Protocol):
    """One of uvicorn's HTTP/1.1 connections, as its `ConnectionPolicy` sees it."""

    def awaiting_head(self) -> bool:
        """Whether the connection waits for (the rest of) a request head: it is silent, kept
        alive between requests, or still sending a head (the app has seen nothing of it)."""
        ...

    def request(self) -> object:
        """The request under way or last answered, to compare by identity (None before the
        first)."""
        ...

    def request_whole(self) -> bool:
        """Whether the `request` arrived whole, or is being answered."""
        ...

    def closing(self) -> bool:
        """Whether the connection is closed or closing."""
        ...

    def answer(self, response: bytes) -> None:
        """Write ``response`` (a whole HTTP/1.1 response) and close the connection."""
        ...

    def refuse(self, response: bytes, linger: float) -> None:
        """Write ``response`` and end the writing side without reading the request; close
        the connection ``linger`` seconds later, so that the client reads the answer."""
        ...

    def close(self) -> None:
        """Close the connection now."""
        ...


class ConnectionPolicy(Protocol):
    """What a connection's policy is told: one call for each hook, none when it has none."""

    def received(self, data: bytes, parse: Callable[[bytes], None]) -> None:
        """``data`` arrived: hand it to ``parse`` (uvicorn's parser), or drop it."""
        ...

    def answered(self) -> None:
        """A response went out whole; the connection waits for the next request."""
        ...

    def lost(self) -> None:
        """The connection is gone."""
        ...

    def unparsable(self) -> None:
        """uvicorn could not parse the request: it is answered 400, and the connection closed."""
        ...


_HOOKS = ("connection_made", "data_received", "on_response_complete", "connection_lost")
_UVICORN_ERRORS = logging.getLogger("uvicorn.error")  # its protocols' logger
_PARSE_WARNING = "Invalid HTTP request received."
"""The warning uvicorn's protocols log for each request they cannot parse."""


class _WithoutParseWarnings(logging.Filter):
    """Drops uvicorn's warning for each request it cannot parse, once a policy is told of
    them (`ConnectionPolicy.unparsable`): a client sending garbage must not add a log line
    a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _PARSE_WARNING


_WITHOUT_PARSE_WARNINGS = _WithoutParseWarnings()


class _Hooked(asyncio.Protocol):
    """Calls from uvicorn's HTTP protocols (mixed in before them) to the connection's policy,
    and what the policy may do (`HttpConnection`).

    Its state lives in a slot: uvicorn's protocol already has 27 attributes, and an
    instance dict past 30 keys stops sharing its keys with the class's other instances
    (1.3 KiB more per connection, every open stream included).
    """

    __slots__ = ("_policy",)
    _policy: ConnectionPolicy | None

    bad_request: ClassVar[tuple[Headers, bytes] | None] = None
    """The headers and body of the answer to a request uvicorn cannot parse (None:
    uvicorn's own)."""

    # What the uvicorn protocol provides.
    transport: asyncio.Transport
    cycle: Any
    config: Any

    @staticmethod
    def open_policy(app: object, connection: HttpConnection) -> ConnectionPolicy | None:
        """The policy of a new ``connection`` to ``app`` (the ASGI app uvicorn loaded), or
        None for none: subclasses say."""
        return None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._policy = policy = self.open_policy(self.config.loaded_app, self) if HOOKED else None
        if policy is not None and _WITHOUT_PARSE_WARNINGS not in _UVICORN_ERRORS.filters:
            _UVICORN_ERRORS.addFilter(_WITHOUT_PARSE_WARNINGS)

    def data_received(self, data: bytes) -> None:
        policy = self._policy
        if policy is None:
            super().data_received(data)
        else:
            policy.received(data, super().data_received)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self._policy is not None:
            self._policy.answered()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        policy = self._policy
        if policy is not None:
            self._policy = None  # the policy refers to the connection: no cycle to collect
            policy.lost()

    def send_400_response(self, msg: str) -> None:
        """uvicorn could not parse the request: tell the policy, and answer with its 400
        (`bad_request`) or uvicorn's."""
        if self._policy is not None:
            self._policy.unparsable()
        if self.bad_request is None:
            super().send_400_response(msg)  # type: ignore[misc]
            return
        self._write_400(*self.bad_request)
        self.transport.close()

    def _write_400(self, headers: Headers, body: bytes) -> None:
        raise NotImplementedError  # each protocol writes a response its own way

    # For the policy (`HttpConnection`).

    def awaiting_head(self) -> bool:
        cycle = self.cycle
        return cycle is None or bool(cycle.response_complete)

    def request(self) -> object:
        return self.cycle

    def request_whole(self) -> bool:
        cycle = self.cycle
        return not cycle.more_body or bool(cycle.response_started)

    def closing(self) -> bool:
        return self.transport.is_closing()

    def answer(self, response: bytes) -> None:
        self.transport.write(response)
        self.transport.close()

    def refuse(self, response: bytes, linger: float) -> None:
        transport = self.transport
        transport.write(response)
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(linger, transport.close)

    def close(self) -> None:
        self.transport.close()


HOOKED = all(hasattr(H11Protocol, name) for name in _HOOKS)
"""Whether uvicorn's HTTP protocols have the hooks `ConnectionPolicy` is called from (else
the protocols run as uvicorn made them, without a policy)."""


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


class H11Connection(_Hooked, H11Protocol):
    """uvicorn's h11 protocol, calling the connection's policy."""

    def _write_400(self, headers: Headers, body: bytes) -> None:
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is not built for every platform
    pass
else:

    class HttpToolsConnection(_Hooked, HttpToolsProtocol):
        """uvicorn's httptools protocol, calling the connection's policy.

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

        def _write_400(self, headers: Headers, body: bytes) -> None:
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in [*self.server_state.default_headers, *headers]:
                head += [name, b": ", value, b"\r\n"]
            self.transport.write(b"".join([*head, b"\r\n", body]))

    HOOKED = HOOKED and all(hasattr(HttpToolsProtocol, name) for name in _HOOKS)
