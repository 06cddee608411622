"""HEAD works on every GET route: the GET's status and headers, and no body. On `/stream`
it answers the headers and ends, opening no stream."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.http.helpers import publish
from tests.support import RunningServer, run_server

# Headers that describe one message's framing or moment, not the resource.
_FRAMING = {"date", "content-length", "transfer-encoding"}
# Bodies that change between two requests (counters, clocks).
_CHANGING = {"/stats", "/metrics", "/healthz"}


def _get(client: httpx.Client, path: str) -> httpx.Response:
    """The GET's status and headers, without reading a stream's endless body."""
    with client.stream("GET", path) as response:
        return response


def _assert_head_like_get(client: httpx.Client, path: str) -> httpx.Response:
    got = _get(client, path)
    head = client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert _resource_headers(head) == _resource_headers(got)
    if "content-length" in got.headers and path.split("?")[0] not in _CHANGING:
        assert head.headers["content-length"] == got.headers["content-length"]
    return head


def _resource_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.items() if k not in _FRAMING)


def _asset(client: httpx.Client) -> str:
    found = re.search(r'(dashboard/[^"]+\.js)', client.get("/").text)
    assert found is not None
    return "/" + found.group(1)


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/stats",
        "/metrics",
        "/items",
        "/items?topic=t&last=1",
        "/items/k?topic=t",
        "/items/missing",
        "/items?limit=0",
        "/stream",
        "/stream?topic=t&last=1",
        "/stream?last=0",
        "/",
        "/docs",
        "/openapi.json",
        "/no-such-route",
    ],
)
def test_head_answers_what_get_answers_without_a_body(
    server: RunningServer, client: httpx.Client, path: str
) -> None:
    publish(client, server.auth, {"key": "k", "topic": "t", "data": 1})
    _assert_head_like_get(client, path)


def test_head_on_a_dashboard_asset(client: httpx.Client) -> None:
    head = _assert_head_like_get(client, _asset(client))
    assert head.status_code == 200


def test_head_on_the_stream_opens_no_stream(server: RunningServer, client: httpx.Client) -> None:
    # It answers at once (a stream would never end), and subscribes nothing.
    head = client.head("/stream")
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert _replays(client) == 0
    _get(client, "/stream")
    assert _replays(client) == 1


def _replays(client: httpx.Client) -> float:
    """Streams that subscribed (each observed its replay's size once)."""
    found = re.search(r"^tailcast_replay_items_count (\S+)$", client.get("/metrics").text, re.M)
    assert found is not None
    return float(found.group(1))


def test_head_on_the_stream_is_refused_as_get_is() -> None:
    with (
        run_server(jwt_secret="s" * 32) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        head, got = client.head("/stream"), client.get("/stream")
        assert head.status_code == got.status_code == 401
        assert head.headers["www-authenticate"] == got.headers["www-authenticate"]
        assert head.content == b""


def test_head_works_through_the_middleware_too() -> None:
    # With CORS on, requests go through FastAPI's routing rather than the app's fast path.
    with (
        run_server(cors_origins="https://dashboard.example") as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        for path in ("/stream", "/items", "/healthz"):
            _assert_head_like_get(client, path)
        assert _replays(client) == 1  # the GET /stream's alone
