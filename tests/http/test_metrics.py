"""`/metrics` exposes the service's counters in Prometheus's text format, read at scrape
time: publishes, live deliveries, subscribers, the cache, resets by reason, catch-ups,
and histograms of publish latency and of replay sizes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
from httpx_sse import connect_sse
from prometheus_client.parser import text_string_to_metric_families

from tests.http.helpers import Event, events, publish, publish_many, take, until_live
from tests.support import RunningServer, run_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(client: httpx.Client) -> Samples:
    """Every sample of /metrics, by (sample name, labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_are_prometheus_text(client: httpx.Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names >= {
        "tailcast_items_published",
        "tailcast_items_delivered",
        "tailcast_subscribers",
        "tailcast_cache_items",
        "tailcast_cache_bytes",
        "tailcast_resets",
        "tailcast_catchups",
        "tailcast_publish_seconds",
        "tailcast_replay_items",
    }


def test_metrics_count_published_items_and_what_the_cache_holds(
    server: RunningServer, client: httpx.Client
) -> None:
    publish_many(client, server.auth, 5, topic="a")
    publish(client, server.auth, {"data": "one more"})

    samples = _scrape(client)
    assert _value(samples, "tailcast_items_published_total") == 6
    assert _value(samples, "tailcast_cache_items") == 6
    assert _value(samples, "tailcast_cache_bytes") > 6 * len('{"data":0}')


def test_metrics_count_subscribers_and_every_live_delivery(
    server: RunningServer, client: httpx.Client
) -> None:
    subscribers, items = 3, 4
    with ExitStack() as stack:
        streams: list[Iterator[Event]] = []
        for _ in range(subscribers):
            source = stack.enter_context(connect_sse(client, "GET", "/stream"))
            stream = events(source.iter_sse())
            until_live(stream)
            streams.append(stream)
        publish_many(client, server.auth, items)
        for stream in streams:
            take(stream, items)

        samples = _scrape(client)
        assert _value(samples, "tailcast_subscribers") == subscribers
        assert _value(samples, "tailcast_items_delivered_total") == subscribers * items


def test_metrics_count_a_reset_by_its_reason(server: RunningServer, client: httpx.Client) -> None:
    publish(client, server.auth, {"data": 1})  # a Redis replica then knows the log's ids
    # An id from before the server's history: the stream begins with a `restarted` reset.
    with connect_sse(client, "GET", "/stream", params={"since": "1-0"}) as source:
        replayed, _live = until_live(events(source.iter_sse()))
    assert replayed[0].event == "reset"
    assert replayed[0].data["reason"] == "restarted"

    samples = _scrape(client)
    assert _value(samples, "tailcast_resets_total", reason="restarted") == 1
    assert _value(samples, "tailcast_resets_total", reason="expired") == 0


def test_metrics_count_a_catch_up_of_an_overrun_subscriber() -> None:
    # One batch far larger than the live buffer overruns the subscriber at once: it
    # catches up from the cache (see test_slow_reader.py).
    with (
        run_server(live_buffer_items=4) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
        connect_sse(client, "GET", "/stream") as source,
    ):
        stream = events(source.iter_sse())
        until_live(stream)
        assert _value(_scrape(client), "tailcast_catchups_total") == 0
        publish_many(client, server.auth, 20)
        take(stream, 20)

        assert _value(_scrape(client), "tailcast_catchups_total") >= 1


def test_metrics_histograms_observe_each_publish_and_each_replay(
    server: RunningServer, client: httpx.Client
) -> None:
    publish_many(client, server.auth, 3)
    publish(client, server.auth, {"data": "fourth"})
    with connect_sse(client, "GET", "/stream") as source:
        until_live(events(source.iter_sse()))

    samples = _scrape(client)
    assert _value(samples, "tailcast_publish_seconds_count") == 2
    assert _value(samples, "tailcast_publish_seconds_sum") > 0
    assert _value(samples, "tailcast_replay_items_count") == 1
    assert _value(samples, "tailcast_replay_items_sum") == 4
    assert _value(samples, "tailcast_replay_items_bucket", le="1.0") == 0
    assert _value(samples, "tailcast_replay_items_bucket", le="10.0") == 1
