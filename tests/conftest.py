"""Shared fixtures: a real uvicorn server on a free loopback port, run in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sse_starlette.sse import AppStatus

from tests.redis_support import RedisProcess, redis_process
from tests.support import RunningServer, run_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _reset_sse_starlette_exit_flag() -> Iterator[None]:
    # sse-starlette keeps a process-wide "should exit" flag once a signal set it.
    AppStatus.should_exit = False
    yield
    AppStatus.should_exit = False


@pytest.fixture
def server() -> Iterator[RunningServer]:
    """A Tailcast service with default settings (and a known publish token)."""
    with run_server() as running:
        yield running


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A fresh, empty Redis of the test's own on a free loopback port."""
    with redis_process(tmp_path / "redis") as server:
        yield server
