"""The running service's state, shared by the routes, the lifespan and the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streaming import Backend

from .settings import Settings

if TYPE_CHECKING:
    from .stream import EventStream


@dataclass(slots=True)
class Service:
    """What a request needs: settings, the backend and the publish token."""

    settings: Settings
    backend: Backend
    publish_token: str
    streams: set[EventStream] = field(default_factory=set, repr=False)

    def begin_shutdown(self) -> None:
        """End every open stream now, so the server can finish its open responses."""
        self.backend.replica.close()
