"""Every way a real Redis refuses a publish, as the service answers it.

"This server cannot take writes now" (a replica, a server still loading, a replica cut off
from its master, too few replicas, a busy script, a stalled or gone server) is a 503 with
Retry-After and `/healthz` degraded, the Redis message in the detail; any other error (a
fault, such as a key of the wrong type) is a logged 500. Each test provokes its error
from a real ``redis-server``."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.redis.helpers import TOKEN, fast_sync, wait_replica_online
from tests.redis_support import RedisProcess, free_port
from tests.support import RunningServer, run_server

LOG = "tailcast:log"


@contextlib.contextmanager
def _redis(directory: Path, *options: str, **fields: int) -> Iterator[RedisProcess]:
    server = RedisProcess(directory, options=options, **fields)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextlib.contextmanager
def _serving(server: RedisProcess, wait_replicas: int = 0) -> Iterator[RunningServer]:
    with run_server(
        backend=server.url, publish_token=TOKEN, redis_wait_replicas=wait_replicas
    ) as running:
        yield running


def _publish(running: RunningServer, timeout: float = 15.0) -> httpx.Response:
    return httpx.post(
        running.url + "/items",
        json={"data": 1},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=timeout,
    )


def _assert_unavailable(running: RunningServer, response: httpx.Response, message: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    assert message in response.json()["detail"]
    health = httpx.get(running.url + "/healthz", timeout=5)
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"


def test_a_writable_replica_refusing_wait_answers_503(tmp_path: Path) -> None:
    # A replica that takes writes runs the publish script locally, then refuses the WAIT:
    # the message redis-py 8.2 met when it retried a WAIT on a demoted master.
    with (
        _redis(tmp_path / "master") as master,
        _redis(tmp_path / "replica", "replica-read-only no", replica_of=master.port) as replica,
    ):
        fast_sync(master)
        wait_replica_online(master)
        with _serving(replica, wait_replicas=1) as running:
            response = _publish(running)
            _assert_unavailable(running, response, "WAIT cannot be used with replica instances")


def test_a_replica_cut_off_from_its_master_answers_503_masterdown(tmp_path: Path) -> None:
    with _redis(tmp_path / "redis") as server, _serving(server) as running:
        assert _publish(running).status_code == 201
        with server.client() as client:
            client.config_set("replica-serve-stale-data", "no")
            client.replicaof("127.0.0.1", free_port())  # nobody listens there
        response = _publish(running)
        _assert_unavailable(running, response, "Link with MASTER is down")


def test_a_redis_loading_its_dataset_answers_503_loading(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    with _redis(directory) as server:
        port = server.port
        with _serving(server) as running:
            assert _publish(running).status_code == 201
            with server.client() as client:
                client.eval("for i = 1, 50000 do redis.call('SET', 'k' .. i, i) end", 0)
                client.save()
            server.kill()
            # The same port, loading the saved keys slowly (100 µs each: ~5 s).
            slow = RedisProcess(
                directory,
                port=port,
                options=(
                    "save ''",
                    "key-load-delay 100",
                    "loading-process-events-interval-bytes 1024",
                ),
            )
            with contextlib.ExitStack() as stack:
                stack.callback(slow.kill)
                slow.start_loading()
                response = _publish(running)
                _assert_unavailable(running, response, "loading the dataset")


def test_too_few_good_replicas_answers_503_noreplicas(tmp_path: Path) -> None:
    with _redis(tmp_path / "redis") as server, _serving(server) as running:
        assert _publish(running).status_code == 201
        with server.client() as client:
            client.config_set("min-replicas-to-write", 1)
        response = _publish(running)
        _assert_unavailable(running, response, "Not enough good replicas to write")


def test_a_redis_busy_running_a_script_answers_503_busy(tmp_path: Path) -> None:
    with (
        _redis(tmp_path / "redis", "busy-reply-threshold 100") as server,
        _serving(server) as running,
    ):
        assert _publish(running).status_code == 201

        def spin() -> None:
            with contextlib.suppress(redis.RedisError), server.client() as client:
                client.eval("while true do end", 0)

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        try:
            _wait_busy(server)
            response = _publish(running)
            _assert_unavailable(running, response, "busy running a script")
        finally:
            with contextlib.suppress(redis.RedisError), server.client() as client:
                client.script_kill()
            spinner.join(5)


def test_a_stalled_redis_answers_503_after_the_socket_timeout(tmp_path: Path) -> None:
    with _redis(tmp_path / "redis") as server, _serving(server) as running:
        assert _publish(running).status_code == 201
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            _assert_unavailable(running, _publish(running), "Timeout")
        finally:
            os.kill(server.process.pid, signal.SIGCONT)


def test_a_redis_that_is_gone_answers_503(tmp_path: Path) -> None:
    with _redis(tmp_path / "redis") as server, _serving(server) as running:
        assert _publish(running).status_code == 201
        server.kill()
        response = _publish(running)
        _assert_unavailable(running, response, "Connection refused")


def test_any_other_redis_error_is_a_logged_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _redis(tmp_path / "redis") as server, _serving(server) as running:
        assert _publish(running).status_code == 201
        with server.client() as client:
            client.delete(LOG)
            client.set(LOG, "not a stream")
        with caplog.at_level(logging.ERROR):
            response = _publish(running)
        assert response.status_code == 500
        assert "WRONGTYPE" in caplog.text
        health = httpx.get(running.url + "/healthz", timeout=5)
        assert health.json()["status"] == "ok"


def _wait_busy(server: RedisProcess) -> None:
    """Until the server answers BUSY (the script has run past busy-reply-threshold)."""
    for _ in range(100):
        try:
            with server.client() as client:
                client.ping()
        except redis.ResponseError as exc:
            if "BUSY" in str(exc):
                return
        threading.Event().wait(0.05)
    raise AssertionError("the script never made Redis busy")
