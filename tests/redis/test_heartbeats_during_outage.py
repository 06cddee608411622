"""Every open stream hears from the server (an event or a heartbeat) at least once per
``--heartbeat`` interval: after its last item, while the instance serves other requests,
and while Redis is stopped. Served under uvloop, as uvicorn picks it when installed.

uvloop's timers work in whole milliseconds: a sleep ends up to a millisecond early when
something else wakes the loop just before the deadline (here a slow client, sending a
request a byte at a time while a heartbeat falls due). A heartbeat timer that then found
itself "not yet due" skipped the tick, and a stream whose last item came just after the
tick before had to wait for the next: one and a half intervals of silence (22.5 s with
the default 15 s).
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import anyio
import httpx

from tests.redis.helpers import (
    Instance,
    Subscriber,
    eventually,
    publish_one,
    running_instances,
    start_live,
)
from tests.redis_support import RedisProcess

HEARTBEAT = 1.0
TOLERANCE = 0.25
"""Seconds a heartbeat may come late: from the server's timer to the test's read on
loopback takes milliseconds; the rest is margin for a loaded 2-core machine. A skipped
tick costs half an interval (0.5 s) or more."""
STREAMS = 4
ITEMS = 8
OUTAGE = 2.0  # seconds Redis stays stopped
_TRICKLE_MAX = 60_000  # bytes of one header line


def _runs_uvloop(instance: Instance) -> bool:
    return "uvloop" in Path(f"/proc/{instance.process.pid}/maps").read_text()


async def _heartbeat(subscriber: Subscriber, number: int) -> float:
    """When the stream's heartbeat ``number`` (counting from 0) came, once it has."""
    heartbeats = subscriber.heartbeats
    await eventually(lambda: len(heartbeats) > number, HEARTBEAT * 3, interval=0.001)
    return heartbeats[number]


def _trickle(port: int, start: float, end: float) -> None:
    """From ``start`` to ``end`` (monotonic), send a request's header a byte at a time
    (each byte wakes the instance's event loop; at most `_TRICKLE_MAX`), then finish it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: tailcast\r\nX-Padding: ")
        time.sleep(max(0.0, start - time.monotonic()))
        sent = 0
        while time.monotonic() < end and sent < _TRICKLE_MAX:
            sent += sock.send(b"a")
        sock.sendall(b"\r\nConnection: close\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 200"), "the health check failed"


async def _busy(port: int, start: float, end: float) -> None:
    await anyio.to_thread.run_sync(_trickle, port, start, end)


async def test_every_stream_hears_from_the_server_within_the_heartbeat_interval(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    with running_instances(
        redis_server.url, tmp_path, 1, "--heartbeat", str(HEARTBEAT)
    ) as instances:
        instance = instances[0]
        assert _runs_uvloop(instance), "the instance should run on uvloop (uvicorn's default)"
        subscribers = [Subscriber([instance.url]) for _ in range(STREAMS)]
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client,
            anyio.create_task_group() as readers,
        ):
            await start_live(readers, client, subscribers)
            start = time.monotonic()
            # An item just after a heartbeat tick; requests while the next heartbeat is due
            # (one interval after the item: the tick half-way was too early for it).
            watched = subscribers[0]
            tick = await _heartbeat(watched, len(watched.heartbeats))
            for n in range(ITEMS):
                after = len(watched.heartbeats)
                assert (await publish_one(client, instance.url, n)).status_code == 201
                due = tick + HEARTBEAT
                await _busy(instance.port or 0, due - 0.08, due + 0.08)
                tick = await _heartbeat(watched, after)  # the next item follows this tick
            # Redis stopped, health checks now and then.
            assert redis_server.process is not None
            redis_server.process.send_signal(signal.SIGSTOP)
            try:
                down = time.monotonic() + OUTAGE
                while time.monotonic() < down:
                    await client.get(instance.url + "/healthz")
                    await anyio.sleep(0.05)
            finally:
                redis_server.process.send_signal(signal.SIGCONT)
            end = time.monotonic()
            readers.cancel_scope.cancel()
    silences = [round(s.longest_silence(start, end), 3) for s in subscribers]
    assert [s.connections for s in subscribers] == [1] * STREAMS
    assert [len(s.items) for s in subscribers] == [ITEMS] * STREAMS
    assert max(silences) <= HEARTBEAT + TOLERANCE, (
        f"longest silence per stream (s): {silences}; --heartbeat {HEARTBEAT}"
    )
