"""Prometheus metrics of one service, on a registry of its own.

Counts on the delivery path are the core's plain integers (`streaming.Counters`), read
by a collector at scrape time: nothing runs per delivered item. Only the publish latency
is a prometheus Histogram, observed once per ``POST /items``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import accumulate
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from app.server.connections import ConnectionGuard
from streaming import Backend, Distribution, ResetReason

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text exposition format, which every Prometheus version reads."""

_PUBLISH_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Seconds: an in-memory publish takes well under a millisecond, a replicated one more."""

RESET_REASONS: tuple[ResetReason, ...] = get_args(ResetReason)


class Metrics:
    """The service's metrics: the backend's counters and the publish latency histogram.

    A registry per service, not the process-wide default, so several apps can live in one
    process (as in the tests).
    """

    def __init__(self, backend: Backend, connections: ConnectionGuard) -> None:
        self.started = time.monotonic()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_BackendCollector(backend))
        self.registry.register(_ConnectionCollector(connections))
        self.streams_refused = Counter(
            "tailcast_streams_refused",
            "Streams refused with 503 because max_streams were open.",
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "tailcast_publish_seconds",
            "Time to answer a POST /items, refusals included (seconds).",
            buckets=_PUBLISH_BOUNDS,
            registry=self.registry,
        )

    @property
    def uptime(self) -> float:
        """Seconds since the service was created."""
        return time.monotonic() - self.started

    def render(self) -> bytes:
        """Every metric in the text exposition format."""
        return generate_latest(self.registry)


class _ConnectionCollector(Collector):
    """Reads the connection guard's books at each scrape."""

    def __init__(self, connections: ConnectionGuard) -> None:
        self._connections = connections

    def collect(self) -> Iterable[Metric]:
        connections = self._connections
        yield GaugeMetricFamily(
            "tailcast_connections", "Open HTTP connections.", value=connections.open
        )
        closed = CounterMetricFamily(
            "tailcast_connections_closed",
            "Connections the server closed or refused to protect itself, by reason.",
            labels=["reason"],
        )
        counts = connections.counts
        for reason in ("request_timeout", "head_too_large", "evicted", "refused", "unparsable"):
            closed.add_metric([reason], getattr(counts, reason))
        yield closed


class _BackendCollector(Collector):
    """Reads the backend's stats at each scrape."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def collect(self) -> Iterable[Metric]:
        stats = self._backend.stats()
        counters = stats.counters
        yield CounterMetricFamily(
            "tailcast_items_published",
            "Items published through this instance's POST /items.",
            value=counters.published,
        )
        yield CounterMetricFamily(
            "tailcast_items_delivered",
            "Live items handed to this instance's subscribers (replays not included).",
            value=counters.delivered,
        )
        yield GaugeMetricFamily("tailcast_subscribers", "Open streams.", value=stats.subscribers)
        yield GaugeMetricFamily("tailcast_cache_items", "Items cached.", value=stats.items)
        yield GaugeMetricFamily(
            "tailcast_cache_bytes", "Bytes of encoded items cached.", value=stats.bytes
        )
        resets = CounterMetricFamily(
            "tailcast_resets", "Reset events sent to subscribers, by reason.", labels=["reason"]
        )
        for reason in RESET_REASONS:
            resets.add_metric([reason], counters.resets.get(reason, 0))
        yield resets
        yield CounterMetricFamily(
            "tailcast_catchups",
            "Times a subscriber overrun by the live buffer caught up from the cache.",
            value=counters.catchups,
        )
        yield _histogram(
            "tailcast_replay_items",
            "Items replayed to each new subscriber before it went live.",
            counters.replayed,
        )


def _histogram(name: str, documentation: str, distribution: Distribution) -> Metric:
    # Bounds spelled as prometheus_client spells its own ("1.0", "+Inf").
    bounds = [repr(float(bound)) for bound in distribution.bounds] + ["+Inf"]
    buckets = zip(bounds, map(float, accumulate(distribution.counts)), strict=True)
    return HistogramMetricFamily(
        name, documentation, buckets=list(buckets), sum_value=distribution.sum
    )
