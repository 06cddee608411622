"""uvicorn's HTTP protocols, answering the requests they refuse themselves as problems.

uvicorn refuses a request it cannot parse before the app sees it: a malformed request line
or header, a URL over 64 KiB (httptools' URL parser), or with h11 a request head over
16 KiB arriving in pieces. Its answer is a text/plain 400; these subclasses send the same
400 as an RFC 9457 problem document, like every other error of the service. They override
one method of uvicorn's protocol classes (pyproject.toml bounds uvicorn's version).
"""

from __future__ import annotations

import asyncio

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from .problems import MEDIA_TYPE

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


class ProblemH11Protocol(H11Protocol):
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

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is not built for every platform
    pass
else:

    class ProblemHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing unparsable requests with a problem document."""

        def send_400_response(self, msg: str) -> None:
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in [*self.server_state.default_headers, *_HEADERS]:
                head += [name, b": ", value, b"\r\n"]
            self.transport.write(b"".join([*head, b"\r\n", _BODY]))
            self.transport.close()

    HTTP_PROTOCOL = ProblemHttpToolsProtocol
