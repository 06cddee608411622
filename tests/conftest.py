"""Shared fixtures: a real uvicorn server on a free loopback port, run in a thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sse_starlette.sse import AppStatus

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
