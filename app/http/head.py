"""HEAD on every GET route: the GET's status and headers, without its body.

A HEAD request is routed as a GET (`as_get`) and answered by the same handler, so the
status and headers are the GET's by construction; the server (uvicorn, which still sees
HEAD) leaves out the body. The responses that write their bodies themselves, and would
otherwise run on (a stream never ends), end right after their headers (`is_head`).
"""

from __future__ import annotations

from starlette.types import Scope

_HEAD = "tailcast.head"
"""Scope key set on a HEAD request routed as a GET."""


def as_get(scope: Scope) -> Scope:
    """The scope of a HEAD request as a GET's, marked; any other scope as it is. A copy:
    the server's own scope must still say HEAD, so that it sends no body."""
    if scope["method"] != "HEAD":
        return scope
    return {**scope, "method": "GET", _HEAD: True}


def is_head(scope: Scope) -> bool:
    """Whether the request is a HEAD routed as a GET: send the headers, then end."""
    return bool(scope.get(_HEAD))
