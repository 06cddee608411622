"""Subscriptions end with their streams, and shutting down ends every open stream cleanly."""

from __future__ import annotations

import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO

import anyio
import httpx
from anyio.abc import TaskStatus
from httpx_sse import aconnect_sse, connect_sse

from tests.http.helpers import (
    Event,
    aevents,
    events,
    publish,
    stingy_transport,
    take,
    until_live,
)
from tests.support import DEFAULTS, TOKEN, RunningServer, run_server

ROOT = Path(__file__).resolve().parents[2]


def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_open_streams_count_as_subscribers(server: RunningServer, client: httpx.Client) -> None:
    with (
        connect_sse(client, "GET", "/stream") as a,
        connect_sse(client, "GET", "/stream", params={"topic": "t"}) as b,
    ):
        # Keep the iterators: closing one (even by garbage collection) closes its connection.
        streams = [events(a.iter_sse()), events(b.iter_sse())]
        for stream in streams:
            until_live(stream)
        assert server.subscriber_count() == 2
        with httpx.Client(base_url=server.url, timeout=5) as other:
            assert other.get("/healthz").json()["subscribers"] == 2


def test_disconnected_client_releases_its_subscription(
    server: RunningServer, client: httpx.Client
) -> None:
    with connect_sse(client, "GET", "/stream") as source:
        stream = events(source.iter_sse())
        until_live(stream)
        assert server.subscriber_count() == 1
    assert _eventually(lambda: server.subscriber_count() == 0), "subscription not released"
    assert client.get("/healthz").json()["subscribers"] == 0


def test_closed_streams_leave_no_task_behind(server: RunningServer) -> None:
    # The first stream starts sse-starlette's one shutdown watcher for the whole loop.
    with (
        httpx.Client(base_url=server.url, timeout=5) as client,
        connect_sse(client, "GET", "/stream") as first,
    ):
        until_live(events(first.iter_sse()))
    assert _eventually(lambda: server.subscriber_count() == 0)
    idle = server.task_count()
    with httpx.Client(base_url=server.url, timeout=5) as client, ExitStack() as open_streams:
        sources = [
            open_streams.enter_context(connect_sse(client, "GET", "/stream")) for _ in range(10)
        ]
        streams = [events(source.iter_sse()) for source in sources]
        for stream in streams:
            until_live(stream)
        assert server.subscriber_count() == 10
        assert server.task_count() > idle
    assert _eventually(lambda: server.subscriber_count() == 0), "subscriptions not released"
    assert _eventually(lambda: server.task_count() == idle), "tasks outlived their streams"


def test_client_leaving_mid_replay_releases_its_subscription(
    server: RunningServer, client: httpx.Client
) -> None:
    publish(client, server.auth, [{"data": {"n": n, "pad": "x" * 500}} for n in range(1000)])
    with connect_sse(client, "GET", "/stream") as source:
        take(events(source.iter_sse()), 10)  # and leave with most of the replay unread
    assert _eventually(lambda: server.subscriber_count() == 0), "subscription not released"


def test_stalled_client_that_disconnects_releases_its_subscription() -> None:
    with (
        run_server(live_buffer_items=64) as server,
        httpx.Client(base_url=server.url, timeout=10) as producer,
    ):
        with (
            httpx.Client(base_url=server.url, timeout=10, transport=stingy_transport()) as reader,
            connect_sse(reader, "GET", "/stream") as source,
        ):
            stream = events(source.iter_sse())
            until_live(stream)
            # ~20 MB, far more than the socket buffers hold: the server's writes to it block.
            for _ in range(100):
                publish(producer, server.auth, [{"data": "x" * 1000} for _ in range(200)])
        assert _eventually(lambda: server.subscriber_count() == 0), "subscription not released"


def test_client_that_stops_reading_is_dropped_after_the_send_timeout() -> None:
    with (
        run_server(live_buffer_items=64, send_timeout=0.5) as server,
        httpx.Client(base_url=server.url, timeout=10) as producer,
        httpx.Client(base_url=server.url, timeout=10, transport=stingy_transport()) as reader,
        connect_sse(reader, "GET", "/stream") as source,
    ):
        stream = events(source.iter_sse())
        until_live(stream)
        # ~20 MB: the server's writes to the reader block, and it stays connected.
        for _ in range(100):
            publish(producer, server.auth, [{"data": "x" * 1000} for _ in range(200)])
        assert _eventually(lambda: server.subscriber_count() == 0), "stalled client kept"
        # Other streams are unaffected.
        with connect_sse(producer, "GET", "/stream", params={"limit": 1}) as other:
            assert [e.event for e in events(other.iter_sse())] == ["item"]


def test_stream_with_a_limit_releases_its_subscription_when_it_ends(
    server: RunningServer, client: httpx.Client
) -> None:
    publish(client, server.auth, [{"data": n} for n in range(3)])
    with connect_sse(client, "GET", "/stream", params={"limit": 2}) as source:
        assert len(list(events(source.iter_sse()))) == 2
    assert _eventually(lambda: server.subscriber_count() == 0), "subscription not released"


async def test_stopping_the_server_ends_every_open_stream_cleanly() -> None:
    grace = 3.0
    with run_server(shutdown_grace=grace) as server:
        ended: list[list[Event]] = []

        async def watch(client: httpx.AsyncClient, *, task_status: TaskStatus[None]) -> None:
            async with aconnect_sse(client, "GET", "/stream") as source:
                stream = aevents(source.aiter_sse())
                async for event in stream:
                    if event.event == "live":
                        break
                task_status.started()
                # Ends normally: a stream cut off without its last chunk raises instead.
                ended.append([event async for event in stream])

        async with httpx.AsyncClient(base_url=server.url, timeout=grace + 5) as client:
            with anyio.fail_after(grace + 5):
                async with anyio.create_task_group() as tasks:
                    for _ in range(5):
                        await tasks.start(watch, client)
                    assert server.subscriber_count() == 5
                    # Fails unless the server has stopped within the grace period (+ 2 s).
                    await anyio.to_thread.run_sync(functools.partial(server.stop, grace + 2))
        assert ended == [[]] * 5
        assert server.subscriber_count() == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_until_end(
    url: str, live: threading.Barrier, received: threading.Barrier, outcome: list[object]
) -> None:
    """Open a stream, wait for `live` and then one item, then read until the stream ends;
    ``outcome`` gets the events after `live`, or the exception that ended the stream."""
    try:
        with (
            httpx.Client(base_url=url, timeout=15) as client,
            connect_sse(client, "GET", "/stream") as source,
        ):
            stream = events(source.iter_sse())
            until_live(stream)
            live.wait(10)
            first = take(stream, 1)
            received.wait(10)
            outcome.append([e.event for e in [*first, *stream]])
    except BaseException as exc:
        outcome.append(exc)


def _backend_args(backend: str) -> list[str]:
    """`tailcast serve` flags for the module's backend (a log of its own on its Redis)."""
    if backend == "memory":
        return []
    return ["--backend", DEFAULTS["backend"], "--redis-prefix", f"test-{secrets.token_hex(6)}"]


def test_sigterm_ends_open_streams_cleanly_and_exits(tmp_path: Path, backend: str) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w+")
    serve = ["serve", "--port", str(port), "--shutdown-grace", "3", *_backend_args(backend)]
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *serve],
        cwd=ROOT,
        env={**os.environ, "TAILCAST_PUBLISH_TOKEN": TOKEN},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=url, timeout=2) as client:

            def healthy() -> bool:
                assert process.poll() is None, "server exited"
                try:
                    return client.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            assert _eventually(healthy, timeout=10), "server did not start"
            assert client.get("/healthz").json()["backend"] == backend

            live, received = threading.Barrier(4), threading.Barrier(4)
            outcomes: list[list[object]] = [[] for _ in range(3)]
            readers = [
                threading.Thread(target=_read_until_end, args=(url, live, received, o), daemon=True)
                for o in outcomes
            ]
            for reader in readers:
                reader.start()
            live.wait(10)
            publish(client, {"Authorization": f"Bearer {TOKEN}"}, {"data": "last"})
            received.wait(10)

        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=10)
        for reader in readers:
            reader.join(5)
        assert outcomes == [[["item"]]] * 3
        # uvicorn re-raises the SIGTERM it handled once it has shut down.
        assert status in (0, -signal.SIGTERM, 128 + signal.SIGTERM), _log(log)
        assert "Traceback" not in _log(log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        log.close()


def _log(log: IO[str]) -> str:
    log.seek(0)
    return log.read()
