"""Headers every response carries, whatever route or error produced it.

- ``X-Content-Type-Options: nosniff``: browsers take the declared media type, never sniff
  one (a JSON body that looks like HTML stays JSON).
- ``Cache-Control: no-store`` when the request carried a token (an ``Authorization``
  header or an ``access_token`` parameter): what a token unlocked is kept by no cache.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Message, Scope, Send

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_Header = tuple[bytes, bytes]
_PLAIN: tuple[frozenset[bytes], tuple[_Header, ...]] = (frozenset({_NOSNIFF[0]}), (_NOSNIFF,))
_WITH_TOKEN: tuple[frozenset[bytes], tuple[_Header, ...]] = (
    frozenset({_NOSNIFF[0], _NO_STORE[0]}),
    (_NOSNIFF, _NO_STORE),
)


class ResponseHeaders:
    """The server's ``send``, adding the headers above to the response's start.

    One small object per request (every open stream keeps its own): the header sets are
    shared. ``server_send`` is the server's own ``send``, for responses that write their
    body to the connection directly (`app.http.event_stream`).
    """

    __slots__ = ("_added", "_replaced", "server_send")

    def __init__(self, scope: Scope, send: Send) -> None:
        self._replaced, self._added = _WITH_TOKEN if carries_token(scope) else _PLAIN
        self.server_send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            replaced = self._replaced
            headers = [h for h in message.get("headers", ()) if h[0].lower() not in replaced]
            headers += self._added
            message["headers"] = headers
        await self.server_send(message)


def with_response_headers(scope: Scope, send: Send) -> ResponseHeaders:
    """``send``, adding the headers above to the response's start."""
    return ResponseHeaders(scope, send)


def carries_token(scope: Scope) -> bool:
    """Whether the request sends a token: an ``Authorization`` header, or a query parameter
    whose name decodes to ``access_token`` (in any case)."""
    if any(name == b"authorization" for name, _ in scope["headers"]):
        return True
    query: bytes = scope.get("query_string", b"")
    if b"%" not in query and b"token" not in query.lower():
        return False
    parameters = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return any(name.lower() == "access_token" for name, _ in parameters)
