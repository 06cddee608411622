"""Running the real service for tests: uvicorn on a loopback port, in a thread or in a
process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from app.http.application import create_app
from app.http.service import Service
from app.server.runner import Server, build_server
from app.settings import Settings

TOKEN = "test-publish-token"

DEFAULTS: dict[str, Any] = {}
"""Settings every `run_server` starts from; tests/http runs once per backend through this."""


@dataclass
class RunningServer:
    """A started server: its base URL, publish token and in-process state."""

    url: str
    token: str
    app: FastAPI
    server: Server
    thread: threading.Thread

    @property
    def service(self) -> Service:
        service: Service = self.app.state.tailcast
        return service

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def subscriber_count(self) -> int:
        return self.service.backend.replica.subscriber_count

    def task_count(self) -> int:
        """How many asyncio tasks the server's event loop has, counted inside that loop."""
        loop = self.server.servers[0].get_loop()

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1  # less this counting task

        return asyncio.run_coroutine_threadsafe(count(), loop).result(timeout=5)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit (as a signal would) and wait for the thread to end."""
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"server did not stop within {timeout} s")


def _bind_loopback(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.contextmanager
def run_server(**settings: Any) -> Iterator[RunningServer]:
    """Start a service with ``settings`` overriding the defaults; stop it on exit."""
    settings = {**DEFAULTS, **settings}
    settings.setdefault("publish_token", TOKEN)
    shared = DEFAULTS.get("backend", "memory")
    if shared != "memory" and settings["backend"] == shared:
        # A log of its own on the module's shared Redis (tests/http), unless the test names
        # one to share. A test that brings its own Redis keeps the default prefix, so its
        # servers share one log as instances do.
        settings.setdefault("redis_prefix", f"test-{secrets.token_hex(6)}")
    app = create_app(Settings(**settings))
    sock = _bind_loopback(settings.get("port", 0))  # port=N: e.g. a restart on the same port
    port = sock.getsockname()[1]
    server = build_server(app, host="127.0.0.1", port=port, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("server did not start")
        time.sleep(0.01)
    running = RunningServer(
        f"http://127.0.0.1:{port}", settings["publish_token"], app, server, thread
    )
    try:
        yield running
    finally:
        if thread.is_alive():
            running.stop()
        sock.close()


@dataclass
class ServerProcess:
    """`tailcast serve` running as a process of its own: its URL, and its memory and log."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def rss(self) -> int:
        """The server's resident set size, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS for the server process")

    def cpu_seconds(self) -> float:
        """CPU time the server has used (user and system), in seconds."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


_SERVE_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
from app.cli import main
sys.exit(main(["serve"]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def run_server_process(
    log_path: Path, *, nofile: tuple[int, int] | None = None, **settings: Any
) -> Iterator[ServerProcess]:
    """Run ``tailcast serve`` in a process of its own with ``settings`` (as ``TAILCAST_*``
    variables), for tests that measure the server's memory or its descriptor limit
    (``nofile``: soft and hard ``RLIMIT_NOFILE`` of the process); stop it on exit."""
    port = _free_port()
    env = {**os.environ, "TAILCAST_PUBLISH_TOKEN": TOKEN, "TAILCAST_PORT": str(port)}
    env.update({f"TAILCAST_{name.upper()}": str(value) for name, value in settings.items()})

    command = [sys.executable, "-m", "app.cli", "serve"]
    if nofile is not None:  # set in the child itself: preexec_fn is unsafe with threads
        command[1:] = ["-c", _SERVE_LIMITED, *map(str, nofile)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = ServerProcess(f"http://127.0.0.1:{port}", TOKEN, process, log_path)
    try:
        deadline = time.monotonic() + 15
        while not _answers(running.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{running.log()}")
            time.sleep(0.05)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
