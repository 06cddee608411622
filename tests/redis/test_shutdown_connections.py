"""A stopped instance leaves no connection open on Redis (nor on its Sentinels)."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis

from streaming import Draft
from streaming.backends.redis import RedisBackend, connector
from tests.redis.helpers import AUTH, TOKEN, other_clients, spawn_instance
from tests.redis_support import RedisProcess
from tests.support import run_server


def _app_clients(server: RedisProcess) -> list[dict[str, Any]]:
    """Connections on ``server`` other than this test's own and Sentinel's (which watches
    the master with connections named ``sentinel-...``)."""
    with server.client() as client:
        return [c for c in other_clients(client) if not c.get("name", "").startswith("sentinel-")]


def _wait_no_clients(server: RedisProcess, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Poll until nobody else is connected; what is still connected at the deadline."""
    deadline = time.monotonic() + timeout
    while (left := _app_clients(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _exercise(url: str) -> None:
    """Publish and stream a little, so every kind of connection has been used."""
    with httpx.Client(base_url=url, timeout=5) as client:
        assert client.post("/items", json={"data": 1}, headers=AUTH).status_code == 201
        with client.stream("GET", "/stream", params={"limit": 1}) as response:
            assert response.status_code == 200
            response.read()


@pytest.fixture
def sentinel(tmp_path: Path, redis_server: RedisProcess) -> Iterator[RedisProcess]:
    """One Sentinel watching ``redis_server`` (enough to find the master; no failover)."""
    watcher = RedisProcess(tmp_path / "sentinel", sentinel_of=redis_server.port).start()
    try:
        yield watcher
    finally:
        watcher.kill()


def test_an_in_process_instance_leaves_no_redis_connection_when_stopped(
    redis_server: RedisProcess,
) -> None:
    with run_server(backend=redis_server.url, publish_token=TOKEN) as server:
        _exercise(server.url)
        assert len(_app_clients(redis_server)) >= 2  # the tail's and the commands' own
        server.stop()
        assert _wait_no_clients(redis_server) == []


def test_an_instance_stopped_by_sigterm_leaves_no_redis_connection(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    instance = spawn_instance(redis_server.url, tmp_path)
    try:
        instance.wait_ready()
        _exercise(instance.url)
        assert len(_app_clients(redis_server)) >= 2
        instance.process.send_signal(signal.SIGTERM)
        instance.terminate(timeout=10)
    finally:
        instance.stop()
    assert _wait_no_clients(redis_server) == []


def test_a_sentinel_instance_leaves_no_connection_to_redis_or_sentinels_when_stopped(
    redis_server: RedisProcess, sentinel: RedisProcess
) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/tailcast/0"
    # No replica here: a 201 without confirmation from one (durable is the default).
    with run_server(backend=url, publish_token=TOKEN, redis_wait_replicas=0) as server:
        _exercise(server.url)
        assert len(_app_clients(redis_server)) >= 2
        assert _app_clients(sentinel), "the instance asked the Sentinel for the master"
        server.stop()
        assert _wait_no_clients(redis_server) == []
        assert _wait_no_clients(sentinel) == []


async def _no_clients_soon(server: RedisProcess) -> list[Any]:
    """`_wait_no_clients` without blocking the event loop (closing a socket takes a turn)."""
    with anyio.move_on_after(5):
        while _app_clients(server):  # noqa: ASYNC110 - polling another process
            await anyio.sleep(0.05)
    return _app_clients(server)


@pytest.mark.parametrize("through", ["redis", "sentinel"])
async def test_the_backend_closes_every_connection_it_opened_on_exit(
    redis_server: RedisProcess, sentinel: RedisProcess, through: str
) -> None:
    # At the backend's own exit, with the event loop still running: stopping a whole server
    # also closes the loop, which closes whatever the backend forgot.
    url = redis_server.url
    if through == "sentinel":
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/tailcast/0"
    async with RedisBackend(connector(url), prefix=f"test-{secrets.token_hex(4)}") as backend:
        await backend.publish([Draft(1)])
        assert len(_app_clients(redis_server)) >= 2
    assert await _no_clients_soon(redis_server) == []
    assert await _no_clients_soon(sentinel) == []


def test_other_clients_lists_connections_besides_our_own(redis_server: RedisProcess) -> None:
    # The check above is only as good as this: another client is listed, ours is not.
    with redis_server.client() as ours, redis.Redis(port=redis_server.port) as other:
        other.ping()
        assert len(other_clients(ours)) == 1
