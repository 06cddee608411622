"""Running the app under uvicorn so that shutdown is prompt."""

from __future__ import annotations

import math
import socket

import uvicorn
from fastapi import FastAPI

from app.http.service import Service
from app.server.protocols import http_protocol


class Server(uvicorn.Server):
    """A uvicorn server that ends open streams as soon as shutdown begins.

    uvicorn waits for open responses before it runs the lifespan shutdown, and an SSE
    response never ends by itself; ending the streams first lets them complete cleanly.
    """

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self._service = service

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._service.begin_shutdown()
        await super().shutdown(sockets)


def build_server(app: FastAPI, *, host: str, port: int, log_level: str = "info") -> Server:
    """A `Server` for ``app``, with uvicorn's graceful timeout set from the app's settings."""
    service: Service = app.state.tailcast
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=math.ceil(service.settings.shutdown_grace) + 1,
        lifespan="on",
        http=http_protocol(service.settings.http),
    )
    return Server(config, service)
