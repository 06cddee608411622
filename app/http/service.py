"""The running service's state, shared by the routes, the lifespan and the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from app.http.fanout import Fanout
from app.http.metrics import Metrics
from app.http.pacing import Turnstile
from app.server.connections import ConnectionGuard, Limits, descriptor_limit
from app.settings import Settings
from streaming import Backend


class OpenStream(Protocol):
    """What the service watches of an open stream (`app.http.event_stream.EventStream`)."""

    @property
    def sending_since(self) -> float:
        """When its pending send began (`time.monotonic()`); 0 when none is under way."""
        ...

    def abort(self) -> None:
        """Drop the stream: its client stopped reading."""
        ...

    def shut_down(self) -> None:
        """End the stream: the service shuts down."""
        ...


STREAM_STARTS_PER_TURN = 16
"""Streams that may start in one turn of the event loop (see `app.http.pacing`)."""


@dataclass(slots=True)
class Service:
    """What a request needs: settings, the backend and the publish token."""

    settings: Settings
    backend: Backend
    publish_token: str
    streams: set[OpenStream] = field(default_factory=set, repr=False)
    fanout: Fanout = field(init=False, repr=False)
    metrics: Metrics = field(init=False, repr=False)
    stream_starts: Turnstile = field(init=False, repr=False)
    connections: ConnectionGuard = field(init=False, repr=False)

    def __post_init__(self) -> None:
        replica = self.backend.replica
        self.fanout = Fanout(replica.broadcast, replica.presence.patterns)
        self.stream_starts = Turnstile(STREAM_STARTS_PER_TURN)
        self.connections = ConnectionGuard(Limits.of(self.settings, descriptor_limit()))
        self.metrics = Metrics(self.backend, self.connections)

    @property
    def limits(self) -> Limits:
        return self.connections.limits

    def begin_shutdown(self) -> None:
        """End every open stream now, so the server can finish its open responses."""
        for stream in list(self.streams):
            stream.shut_down()
        self.backend.replica.close()
