"""Headers every response carries (``nosniff``; ``no-store`` where a token was sent), and
API docs that load nothing from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx
import pytest

from tests.support import RunningServer, run_server


@pytest.fixture(scope="module", autouse=True)
def backend() -> str:
    """The HTTP layer's alone: the in-memory backend is enough."""
    return "memory"


@pytest.fixture(scope="module")
def running(http: str) -> Iterator[RunningServer]:
    with run_server(backend="memory") as server:
        yield server


@pytest.fixture
def client(running: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url, timeout=5) as client:
        yield client


REQUESTS = [
    ("GET", "/healthz"),
    ("GET", "/stats"),
    ("GET", "/metrics"),
    ("GET", "/items"),
    ("GET", "/items/missing"),
    ("GET", "/items?limit=0"),
    ("GET", "/stream?limit=1&since=x"),
    ("GET", "/stream?limit=1"),
    ("POST", "/items"),
    ("DELETE", "/items"),
    ("GET", "/nope"),
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_every_response_says_nosniff(client: httpx.Client, method: str, path: str) -> None:
    with client.stream(method, path) as response:  # a stream: only its head is read
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/items?access_token=x", {}),
        ("/items?%61ccess_token=x", {}),
        ("/items/k?topic=t&access_token=x", {}),
        ("/stream?limit=1&access_token=x", {}),
        ("/items", {"Authorization": "Bearer x"}),
        ("/healthz", {"Authorization": "Bearer x"}),
    ],
)
def test_a_response_to_a_request_with_a_token_is_not_stored(
    client: httpx.Client, path: str, headers: dict[str, str]
) -> None:
    with client.stream("GET", path, headers=headers) as response:
        assert response.headers.get_list("cache-control") == ["no-store"]


def test_a_response_to_a_request_without_a_token_may_be_stored(client: httpx.Client) -> None:
    assert "cache-control" not in client.get("/items?topic=token").headers


def test_the_api_docs_load_everything_from_the_service_itself(
    running: RunningServer, client: httpx.Client
) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = re.findall(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", page.text)
    assert len(links) >= 3, page.text  # the script, the stylesheet, the schema
    for link in links:
        url = urljoin(running.url + "/docs", link)
        assert url.startswith(running.url + "/"), f"/docs loads {url} from elsewhere"
        assert client.get(url).status_code == 200, url
