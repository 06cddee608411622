"""Helpers for the Redis tests: Tailcast instances as real processes, SSE subscribers that
reconnect with ``Last-Event-ID`` (to another instance if theirs is gone), and polling."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import redis
from anyio.abc import TaskGroup

from tests.redis_support import SENTINEL_MASTER, RedisProcess

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "redis-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOG_STREAM = "tailcast:log"  # the stream of the default --redis-prefix


def sid(text: str) -> tuple[int, int]:
    """A stream id as a tuple that compares numerically ("9-0" < "10-0")."""
    ms, sep, seq = text.partition("-")
    if not (sep and ms.isdigit() and seq.isdigit()):
        raise AssertionError(f"not a stream id: {text!r}")
    return int(ms), int(seq)


def strictly_increasing(ids: Sequence[str]) -> bool:
    keys = [sid(id) for id in ids]
    return all(a < b for a, b in itertools.pairwise(keys))


def logged_ids(client: redis.Redis, stream: str = LOG_STREAM) -> list[str]:
    """Ids of the items (not the epoch markers) the Redis stream holds, in order."""
    entries: Any = client.xrange(stream)
    return [raw_id.decode() for raw_id, fields in entries if b"d" in fields]


def other_clients(client: redis.Redis) -> list[dict[str, Any]]:
    """``CLIENT LIST`` without ``client``'s own connection."""
    own = client.client_id()
    listed: list[dict[str, Any]] = client.client_list()
    return [entry for entry in listed if int(entry["id"]) != own]


# -- Tailcast instances as processes ------------------------------------------------------


_LISTENING = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Instance:
    """``python -m app.cli serve --port 0``, its output in a log file. Port 0 lets the kernel
    pick the port at bind time (a port picked beforehand may be taken meanwhile by another
    test run on the machine); `wait_ready` reads it from uvicorn's startup line."""

    process: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def url(self) -> str:
        assert self.port is not None, "wait_ready() first"
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the instance listens and ``/healthz`` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"instance exited with {self.process.returncode}:\n{self.log}")
            if self.port is None and (found := _LISTENING.search(self.log_path.read_bytes())):
                self.port = int(found[1])
            if self.port is not None:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                        return
            time.sleep(0.05)
        raise AssertionError(f"instance not ready in {timeout} s:\n{self.log}")

    def kill(self) -> None:
        """SIGKILL: die at once, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait (bounded) for the exit; the return code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(f"instance did not exit within {timeout} s of SIGTERM") from None

    def stop(self) -> None:
        """Stop however it takes (teardown): SIGTERM, SIGKILL after 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def spawn_instance(
    backend: str,
    directory: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
) -> Instance:
    """Start (without waiting for it) an instance serving ``backend``."""
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / f"tailcast-{secrets.token_hex(4)}.log"
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--backend",
        backend,
        "--port",
        "0",
        "--heartbeat",
        "0.2",
        "--shutdown-grace",
        "1",
        "--log-level",
        "info",  # for uvicorn's "running on" line
        *args,
    ]
    environment = {**os.environ, "TAILCAST_PUBLISH_TOKEN": TOKEN, **(env or {})}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    return Instance(process, log_path)


@contextlib.contextmanager
def running_instances(
    backend: str, directory: Path, count: int, *args: str
) -> Iterator[list[Instance]]:
    """``count`` ready instances on ``backend``, stopped when the block ends."""
    started: list[Instance] = []
    try:
        for _ in range(count):
            started.append(spawn_instance(backend, directory, *args))
        for instance in started:
            instance.wait_ready()
        yield started
    finally:
        for instance in started:
            instance.stop()


# -- SSE subscribers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    id: str | None
    data: str


@dataclass
class Subscriber:
    """Reads ``/stream`` and records what arrives; when the stream drops it reconnects with
    ``Last-Event-ID`` to the next of its ``urls`` (round robin) and carries on."""

    urls: Sequence[str]
    since: str | None = None
    events: list[SseEvent] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    heartbeats: list[float] = field(default_factory=list)
    activity: list[tuple[int, float]] = field(default_factory=list)
    """(connection number, time) of each connection's start and end, and of every event
    or comment it carried."""
    connections: int = 0
    live: anyio.Event = field(default_factory=anyio.Event)

    @property
    def last_id(self) -> str | None:
        return self.items[-1] if self.items else self.since

    def resets(self) -> list[SseEvent]:
        return [event for event in self.events if event.event == "reset"]

    async def run(self, client: httpx.AsyncClient) -> None:
        """Read until cancelled."""
        attempt = 0
        while True:
            url = self.urls[attempt % len(self.urls)]
            last = self.last_id
            headers = {"Last-Event-ID": last} if last else {}
            opened = self.connections
            with contextlib.suppress(httpx.TransportError):
                async with client.stream("GET", url + "/stream", headers=headers) as response:
                    assert response.status_code == 200, response.status_code
                    self.connections += 1
                    self.activity.append((self.connections, time.monotonic()))
                    await self._read(response)
            if self.connections > opened:  # the end of a connection ends its last silence
                self.activity.append((self.connections, time.monotonic()))
            attempt += 1
            await anyio.sleep(0.05)

    async def _read(self, response: httpx.Response) -> None:
        kind: str = "message"
        id: str | None = None
        data: list[str] = []
        async for line in response.aiter_lines():
            if not line:
                if data:
                    self._dispatch(SseEvent(kind, id, "\n".join(data)))
                kind, id, data = "message", None, []
            elif line.startswith(":"):
                self.heartbeats.append(time.monotonic())
                self.activity.append((self.connections, self.heartbeats[-1]))
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    kind = value
                elif name == "id":
                    id = value
                elif name == "data":
                    data.append(value)

    def longest_silence(self, start: float = 0.0, end: float = float("inf")) -> float:
        """The longest time one connection went without an event or a comment, counting the
        gaps that end between ``start`` and ``end`` (a reconnection is not a silence)."""
        return max(
            (
                b - a
                for (ca, a), (cb, b) in itertools.pairwise(self.activity)
                if ca == cb and start <= b <= end
            ),
            default=0.0,
        )

    def _dispatch(self, event: SseEvent) -> None:
        self.events.append(event)
        self.activity.append((self.connections, time.monotonic()))
        if event.event == "item":
            assert event.id is not None
            self.items.append(event.id)
        elif event.event == "live":
            self.live.set()


# -- waiting ------------------------------------------------------------------------------


async def start_live(
    readers: TaskGroup, client: httpx.AsyncClient, subscribers: Sequence[Subscriber]
) -> None:
    """Run every subscriber in ``readers`` and wait (10 s at most) until each is live."""
    for subscriber in subscribers:
        readers.start_soon(subscriber.run, client)
    with anyio.fail_after(10):
        for subscriber in subscribers:
            await subscriber.live.wait()


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    within: float,
    describe: Callable[[], str] = lambda: "",
    interval: float = 0.02,
) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        held = condition()
        if not isinstance(held, bool):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {describe()}")
        await anyio.sleep(interval)


async def publish_one(
    client: httpx.AsyncClient, url: str, data: Any, seconds: float = 10.0
) -> httpx.Response:
    """POST one item (the request bounded by ``seconds``)."""
    return await client.post(url + "/items", json={"data": data}, headers=AUTH, timeout=seconds)


# -- Sentinel -----------------------------------------------------------------------------


@dataclass
class SentinelTopology:
    """A master, one replica and three Sentinels (quorum 2) watching master ``tailcast``."""

    master: RedisProcess
    replica: RedisProcess
    sentinels: list[RedisProcess]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SENTINEL_MASTER}/0"

    def master_port(self) -> int | None:
        """The master's port as the Sentinels report it (None if one cannot say)."""
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError), sentinel.client() as client:
                address: Any = client.sentinel_get_master_addr_by_name(SENTINEL_MASTER)
                if address:
                    return int(address[1])
        return None

    def quicken(self, info_period_ms: int = 1000, publish_period_ms: int = 1000) -> None:
        """Shorten the Sentinels' fixed periods (``SENTINEL DEBUG``, Redis 7): how often they
        ask each server its ``INFO``, and so how soon they notice an old master that still
        claims the role (demoted after 4 publish periods, at the next ``INFO``: 10 to 18 s
        by default, 4 to 5 s with these)."""
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                client.execute_command(
                    "SENTINEL",
                    "DEBUG",
                    "INFO-PERIOD",
                    info_period_ms,
                    "PUBLISH-PERIOD",
                    publish_period_ms,
                )

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until every Sentinel knows the other two and sees the replica in sync."""
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"Sentinels not ready within {timeout} s")
            time.sleep(0.1)

    def _ready(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                others: Any = client.sentinel_sentinels(SENTINEL_MASTER)
                replicas: Any = client.sentinel_slaves(SENTINEL_MASTER)
            if len(others) < 2 or [r.get("master-link-status") for r in replicas] != ["ok"]:
                return False
        return True


def fast_sync(server: RedisProcess) -> None:
    """Start replication syncs at once (not after Redis's default 5 s diskless delay)."""
    with server.client() as client:
        client.config_set("repl-diskless-sync-delay", 0)


def wait_replica_online(master: RedisProcess, timeout: float = 15.0) -> None:
    """Until ``master`` has a replica in state ``online`` (synced)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError), master.client() as client:
            info: Any = client.info("replication")
            if info.get("slave0", {}).get("state") == "online":
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"no replica of port {master.port} online within {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def sentinel_topology(directory: Path) -> Iterator[SentinelTopology]:
    """A ready `SentinelTopology`; every process killed when the block ends."""
    started: list[RedisProcess] = []
    try:
        master = RedisProcess(directory / "master").start()
        started.append(master)
        fast_sync(master)
        replica = RedisProcess(directory / "replica", replica_of=master.port).start()
        started.append(replica)
        fast_sync(replica)
        sentinels = []
        for n in range(3):
            sentinel = RedisProcess(directory / f"sentinel{n}", sentinel_of=master.port).start()
            started.append(sentinel)
            sentinels.append(sentinel)
        topology = SentinelTopology(master, replica, sentinels)
        topology.wait_ready()
        yield topology
    finally:
        for server in started:
            server.kill()
