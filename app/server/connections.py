"""Connection limits: how many connections and streams the service keeps open, how long a
client may take to send a request, and what happens at the limits.

Every connection holds a file descriptor, and at the process's descriptor limit
(``ulimit -n``) the server can accept nothing: every client, ``/healthz`` included, is
reset without an answer or a log line. So the service stays below it. It raises its soft
limit to the hard one at start (`raise_descriptor_limit`), keeps a reserve for files,
Redis and the listening socket, and derives from the rest `Limits.max_connections`, and
`Limits.max_streams` a tenth lower, so that publishes and ``/healthz`` still find room
when subscribers fill theirs.

`ConnectionGuard` keeps the books for the connections' policy (`app.server.protocols`,
which uvicorn's protocols call through the fence, `app.server.uvicorn_internals`): a
connection that has not sent a whole request within ``request_timeout`` is closed, and at
``max_connections`` a new connection takes the place of the one that has waited longest
for a request (silent, idle between requests, or still sending a head: a slowloris
client), as nginx reuses idle keep-alive connections; only when every connection is busy
is the new one refused with a 503. What it closes or refuses is counted (`/metrics`) and
logged, at most once every ten seconds.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, replace
from typing import Protocol

from app.settings import Settings

logger = logging.getLogger("tailcast")

_LOG_EVERY = 10.0
"""Least seconds between two log lines about closed or refused connections."""


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft limit of open files to the hard limit; the limit (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError):  # above the kernel's nr_open: keep what we have
            return soft, soft
        return soft, wanted
    return soft, soft


def descriptor_limit() -> int:
    """The soft limit of open files, now."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """The connection limits in force, from the settings and the descriptor limit."""

    descriptors: int
    max_connections: int
    max_streams: int
    request_timeout: float

    @classmethod
    def of(cls, settings: Settings, descriptors: int) -> Limits:
        """The settings' limits; unset ones derived from ``descriptors``: all but a reserve
        of 5% (at least 64) for connections, and of those all but 10% (at least 32) for
        streams."""
        max_connections = settings.max_connections
        if max_connections is None:
            max_connections = max(1, descriptors - max(64, descriptors // 20))
        max_streams = settings.max_streams
        if max_streams is None:
            max_streams = max(1, max_connections - max(32, max_connections // 10))
        return cls(descriptors, max_connections, max_streams, settings.request_timeout)

    def warnings(self) -> list[str]:
        """What is wrong with these limits, in words."""
        found = []
        if self.max_connections > self.descriptors - 16:
            found.append(
                f"max_connections ({self.max_connections}) leaves no room below the descriptor "
                f"limit ({self.descriptors}, ulimit -n): at that limit clients are reset "
                "without an answer"
            )
        if self.max_streams >= self.max_connections:
            found.append(
                f"max_streams ({self.max_streams}) is not below max_connections "
                f"({self.max_connections}): open streams can leave no room for publishes "
                "or /healthz"
            )
        return found


class Guarded(Protocol):
    """A connection as the guard sees it (`app.server.protocols.ConnectionLimits`)."""

    def idle(self) -> bool:
        """Whether no request is under way: the connection is silent, kept alive between
        requests, or still sending a request head (the app has seen nothing of it)."""
        ...

    def close(self) -> None:
        """Close the connection now."""
        ...


@dataclass(slots=True)
class ConnectionCounts:
    """Connections closed or refused by the guard since the start, by reason."""

    request_timeout: int = 0
    head_too_large: int = 0
    evicted: int = 0
    refused: int = 0
    unparsable: int = 0


class ConnectionGuard:
    """The books of the open connections: how many, which wait for a request, and what was
    closed or refused."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self.counts = ConnectionCounts()
        self._waiting: dict[Guarded, None] = {}  # oldest first
        self._logged = ConnectionCounts()
        self._last_log = 0.0

    @property
    def request_timeout(self) -> float:
        return self.limits.request_timeout

    def opened(self, connection: Guarded) -> bool:
        """Count a new connection; False when it must be refused (the limit is reached
        and no connection waits for a request)."""
        if self.open >= self.limits.max_connections:
            if not self._evict():
                self.counts.refused += 1
                self.report()
                return False
            self.report()
        self.open += 1
        self.waits(connection)
        return True

    def waits(self, connection: Guarded) -> None:
        """``connection`` waits for a request (it is new, or has had its answer)."""
        self._waiting.pop(connection, None)
        self._waiting[connection] = None

    def closed(self, connection: Guarded, *, counted: bool = True) -> None:
        """``connection`` is gone (``counted``: it was counted by `opened`)."""
        self._waiting.pop(connection, None)
        if counted:
            self.open -= 1

    def timed_out(self) -> None:
        self.counts.request_timeout += 1
        self.report()

    def head_too_large(self) -> None:
        self.counts.head_too_large += 1
        self.report()

    def unparsable(self) -> None:
        self.counts.unparsable += 1
        self.report()

    def _evict(self) -> bool:
        """Close the connection that has waited longest for a request, if any does."""
        while self._waiting:
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            if oldest.idle():  # else busy: it comes back with `waits` once answered
                oldest.close()
                self.counts.evicted += 1
                return True
        return False

    def report(self) -> None:
        """Log what was closed or refused since the last report, unless that was less than
        ten seconds ago (then a later call logs it)."""
        now = time.monotonic()
        if now - self._last_log < _LOG_EVERY:
            return
        counts, logged = self.counts, self._logged
        news = []
        if counts.request_timeout > logged.request_timeout:
            news.append(
                f"closed {counts.request_timeout - logged.request_timeout} that sent no whole "
                f"request within {self.limits.request_timeout:g} s (request_timeout)"
            )
        if counts.head_too_large > logged.head_too_large:
            news.append(
                f"refused {counts.head_too_large - logged.head_too_large} whose request head "
                "was too large"
            )
        if counts.evicted > logged.evicted:
            news.append(
                f"closed {counts.evicted - logged.evicted} idle to make room "
                f"(max_connections={self.limits.max_connections})"
            )
        if counts.refused > logged.refused:
            news.append(
                f"refused {counts.refused - logged.refused} with 503: max_connections "
                f"({self.limits.max_connections}) reached and none idle"
            )
        if counts.unparsable > logged.unparsable:
            news.append(
                f"closed {counts.unparsable - logged.unparsable} after a request that was not "
                "valid HTTP (answered 400)"
            )
        if news:
            logger.warning("connections: %s", "; ".join(news))
            self._last_log = now
            self._logged = replace(counts)
