"""Reading a JSON request body within a byte limit, with precise errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from app.http.problems import Problem
from streaming import exactjson


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json(request: Request, limit: int) -> Any:
    """Parse the body as JSON, refusing an oversized one before it is read into memory.
    Numbers are kept exactly as sent (`streaming.exactjson`)."""
    if not _is_json(request.headers.get("content-type")):
        raise Problem(415, "Send the body as JSON with 'Content-Type: application/json'.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"The body is {declared} bytes; the limit is {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"The body is over the limit of {limit} bytes.")
    if not body:
        raise Problem(400, "The body is empty; send a JSON object or array.")
    try:
        return exactjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"The body is not valid JSON (UTF-8): {exc}.") from None
