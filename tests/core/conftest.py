"""Fixtures for the framework-free core: a fake clock and memory backends that use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streaming import LogConfig, MemoryBackend
from tests.core.helpers import BackendFactory, FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_backend(clock: FakeClock) -> Iterator[BackendFactory]:
    """Build memory backends on the fake clock; ``LogConfig`` fields as keyword arguments."""
    backends: list[MemoryBackend] = []

    def make(**config: int) -> MemoryBackend:
        backend = MemoryBackend(LogConfig(**config), clock=clock)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.replica.close()


@pytest.fixture
def backend(make_backend: BackendFactory) -> MemoryBackend:
    return make_backend()
