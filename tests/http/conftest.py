"""Every HTTP contract test runs against each backend: in-memory and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests import support
from tests.redis_support import redis_process
from tests.support import RunningServer


@pytest.fixture(scope="module", params=["memory", "redis"], autouse=True)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The backend of every server the module's tests start (one Redis per module)."""
    if request.param == "memory":
        yield "memory"
        return
    with redis_process(tmp_path_factory.mktemp("redis")) as redis:
        support.DEFAULTS["backend"] = redis.url
        try:
            yield "redis"
        finally:
            support.DEFAULTS.pop("backend", None)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    """A client of the module's server (its `server` fixture)."""
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


@pytest.fixture(scope="module", params=["httptools", "h11"], autouse=True)
def http(request: pytest.FixtureRequest) -> Iterator[str]:
    """uvicorn's HTTP implementation for every server the module's tests start: the same
    assertions hold on both (httptools takes the fan-out's direct path, h11 does not)."""
    support.DEFAULTS["http"] = request.param
    try:
        yield request.param
    finally:
        support.DEFAULTS.pop("http", None)
