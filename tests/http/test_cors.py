"""With `cors_origins` set, browsers on those origins may call the API (preflights
answered, headers exposed); other origins get no CORS headers; unset, CORS is off."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.http.helpers import assert_problem
from tests.support import run_server

ALLOWED = "https://dashboard.example"
OTHER = "https://elsewhere.example"


@pytest.fixture(scope="module", autouse=True)
def backend() -> str:
    """CORS is the HTTP layer's alone: the in-memory backend is enough."""
    return "memory"


@pytest.fixture(scope="module")
def client(http: str) -> Iterator[httpx.Client]:
    with (
        run_server(backend="memory", cors_origins=f" {ALLOWED} , https://other.example") as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        yield client


def _preflight(client: httpx.Client, path: str, origin: str, method: str) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, last-event-id",
        },
    )


@pytest.mark.parametrize(
    ("path", "method"),
    [("/stream", "GET"), ("/items", "POST"), ("/items", "GET"), ("/stats", "GET")],
)
def test_preflight_from_an_allowed_origin_is_allowed(
    client: httpx.Client, path: str, method: str
) -> None:
    response = _preflight(client, path, ALLOWED, method)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST"} <= methods
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "last-event-id"):
        assert header in allowed_headers


@pytest.mark.parametrize("path", ["/stats", "/metrics", "/items", "/stream"])
def test_response_to_an_allowed_origin_carries_cors_headers(
    client: httpx.Client, path: str
) -> None:
    # Only the headers are read: the stream is closed right after.
    with client.stream("GET", path, headers={"Origin": ALLOWED}) as response:
        assert response.headers["access-control-allow-origin"] == ALLOWED
        exposed = response.headers["access-control-expose-headers"].lower()
    assert "retry-after" in exposed
    assert "www-authenticate" in exposed


def test_refused_publish_exposes_www_authenticate_to_an_allowed_origin(
    client: httpx.Client,
) -> None:
    response = client.post("/items", json={"data": 1}, headers={"Origin": ALLOWED})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("path", ["/stats", "/items", "/stream", "/nope"])
def test_other_origins_get_no_cors_headers(client: httpx.Client, path: str) -> None:
    with client.stream("GET", path, headers={"Origin": OTHER}) as response:
        assert not any(name.startswith("access-control-") for name in response.headers)
        assert "origin" in response.headers["vary"].lower()


@pytest.mark.parametrize("path", ["/stream", "/items"])
def test_a_preflight_from_another_origin_is_refused_with_a_problem(
    client: httpx.Client, path: str
) -> None:
    preflight = _preflight(client, path, OTHER, "GET")
    assert_problem(preflight, 400)
    assert not any(name.startswith("access-control-") for name in preflight.headers)


def test_a_preflight_for_a_header_not_allowed_is_refused_with_a_problem(
    client: httpx.Client,
) -> None:
    response = client.options(
        "/items",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-secret",
        },
    )
    body = assert_problem(response, 400)
    assert "Last-Event-ID" in body["detail"]
    # The origin is listed: its browser may read why.
    assert response.headers["access-control-allow-origin"] == ALLOWED


def test_cors_is_off_without_origins() -> None:
    with (
        run_server(backend="memory") as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        preflight = _preflight(client, "/stream", ALLOWED, "GET")
        response = client.get("/stats", headers={"Origin": ALLOWED})
    assert preflight.status_code == 405
    assert not any(name.startswith("access-control-") for name in preflight.headers)
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_a_stream_refuses_bad_parameters_alike_with_cors_on_and_off(
    client: httpx.Client, http: str
) -> None:
    # With CORS the stream is served by FastAPI's routing, without by the app's fast path:
    # both reach the same handler, so the same problem comes back.
    queries = ["limit=0", "last=x", "since=nope", "limit=1&topic=" + "t" * 300]
    with (
        run_server(backend="memory", http=http) as server,
        httpx.Client(base_url=server.url, timeout=5) as plain,
    ):
        for query in queries:
            fast = plain.get(f"/stream?{query}")
            routed = client.get(f"/stream?{query}", headers={"Origin": ALLOWED})
            assert fast.status_code == routed.status_code == 400, query
            assert fast.json() == routed.json(), query
