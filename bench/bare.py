"""The bare app: a minimal ASGI app under uvicorn, the ceiling for single-item POSTs.

It reads a request's whole body and answers a POST with 201 and a small JSON object, and
any other request with a health body: what any app served by this HTTP server does at
least, and nothing else (no routing, validation, JSON parsing or storage). The bench runs
it as ``python -m bench.bare --host H --port P`` with the uvicorn settings Tailcast's
server uses (app/server/runner.py): uvicorn's defaults (httptools and uvloop when installed), the
lifespan on, log level warning, one process; ``--workers N`` runs uvicorn's process manager
with N of them, the ceiling for Tailcast's ``--workers N`` on the same machine.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HEALTH = b'{"status":"ok","version":"bare uvicorn %s"}' % uvicorn.__version__.encode()
_HEADERS = [(b"content-type", b"application/json")]
_ids = itertools.count()


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    more = True
    while more:  # the whole body, read and dropped
        more = (await receive()).get("more_body", False)
    if scope["method"] == "POST":
        status, body = 201, b'{"id":"%d-%d"}' % (time.time_ns() // 1_000_000, next(_ids))
    else:
        status, body = 200, _HEALTH
    headers = [*_HEADERS, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.workers > 1:  # uvicorn's process manager imports the app by name in each worker
        uvicorn.run(
            "bench.bare:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
            lifespan="on",
        )
        return
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
