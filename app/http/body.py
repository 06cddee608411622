"""Reading a JSON request body within a byte limit, with precise errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from app.http.problems import Problem
from streaming import exactjson


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json(request: Request, limit: int) -> Any:
    """Parse the body as JSON, refusing an oversized one before it is read into memory.
    Numbers are kept exactly as sent (`streaming.exactjson`).

    Headers and body are read from the ASGI scope and messages themselves, as starlette's
    `Request.headers` and `Request.stream` would give them (the first of a repeated
    header): those cost more than parsing a small body."""
    content_type, declared = _content_headers(request)
    if not _is_json(content_type):
        raise Problem(415, "Send the body as JSON with 'Content-Type: application/json'.")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"The body is {declared} bytes; the limit is {limit} bytes.")
    body = await _read_body(request, limit)
    if not body:
        raise Problem(400, "The body is empty; send a JSON object or array.")
    try:
        return exactjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"The body is not valid JSON (UTF-8): {exc}.") from None


def _content_headers(request: Request) -> tuple[str | None, str | None]:
    """``Content-Type`` and ``Content-Length`` (ASGI servers give names in lower case)."""
    content_type = declared = None
    for name, value in request.scope["headers"]:
        if name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
        elif name == b"content-length" and declared is None:
            declared = value.decode("latin-1")
    return content_type, declared


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body; 413 as soon as it is over ``limit`` bytes."""
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Problem(413, f"The body is over the limit of {limit} bytes.")
            if not message.get("more_body", False):
                if not chunks:
                    return bytes(chunk)
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect
