"""The running service's state, shared by the routes, the lifespan and the server."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from streaming import Backend

from .settings import Settings


@dataclass(slots=True)
class Service:
    """What a request needs: settings, the backend and the publish token."""

    settings: Settings
    backend: Backend
    publish_token: str
    closing: anyio.Event | None = field(default=None, repr=False)

    def begin_shutdown(self) -> None:
        """End every open stream now, so the server can finish its open responses."""
        if self.closing is not None:
            self.closing.set()
        self.backend.replica.close()
