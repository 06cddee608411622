"""Real Redis servers and Sentinels for tests, on free loopback ports, stopped afterwards.

Outside CI a machine without ``redis-server`` skips these tests with the reason; in CI
(``CI=true``) a missing binary fails them, since nothing may be skipped there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

SENTINEL_MASTER = "tailcast"


def redis_server_binary() -> str:
    """Path of ``redis-server``; skip (or fail, in CI) when it is not installed."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisProcess:
    """One ``redis-server`` (or Sentinel) process with its own directory and port."""

    directory: Path
    port: int = field(default_factory=free_port)
    replica_of: int | None = None
    sentinel_of: int | None = None
    options: tuple[str, ...] = ()
    """More lines of ``redis.conf`` (a server's, not a Sentinel's)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def start(self) -> RedisProcess:
        self._spawn()
        self._wait_until_up()
        return self

    def start_loading(self) -> RedisProcess:
        """Start, and return as soon as it answers, if only with ``LOADING`` (a dataset
        still loading from disk)."""
        self._spawn()
        self._wait_until_up(loading_ok=True)
        return self

    def _spawn(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "redis.conf"
        config.write_text(self._config())
        command = [redis_server_binary(), str(config)]
        if self.sentinel_of is not None:
            command.append("--sentinel")
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        """Shut down as SIGTERM asks (a clean stop)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Die at once, as a crash would."""
        self._end(signal.SIGKILL)

    def _end(self, how: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(how)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def _config(self) -> str:
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.directory}",
            "save ''",
            "appendonly no",
            "protected-mode no",
        ]
        if self.replica_of is not None:
            lines.append(f"replicaof 127.0.0.1 {self.replica_of}")
        lines += self.options
        if self.sentinel_of is not None:
            lines = [
                f"port {self.port}",
                "bind 127.0.0.1",
                f"dir {self.directory}",
                f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {self.sentinel_of} 2",
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000",
                f"sentinel failover-timeout {SENTINEL_MASTER} 5000",
                f"sentinel parallel-syncs {SENTINEL_MASTER} 1",
            ]
        return "\n".join(lines) + "\n"

    def _wait_until_up(self, timeout: float = 10.0, *, loading_ok: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")
                raise AssertionError(f"redis-server exited at start:\n{log}")
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.BusyLoadingError:
                if loading_ok:
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"redis-server on port {self.port} did not start")


@contextlib.contextmanager
def redis_process(directory: Path, **options: int | None) -> Iterator[RedisProcess]:
    """A started Redis (see `RedisProcess`), stopped when the block ends."""
    server = RedisProcess(directory, **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.kill()
