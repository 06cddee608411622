"""Starting and stopping the servers under test: Tailcast (memory or Redis), nginx + Nchan,
and the bare uvicorn app.

Every server is one process tree started here and killed here, on errors and Ctrl-C too
(an `atexit` hook catches what a `finally` could not).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from . import nchan, procstat
from .errors import BenchError
from .http import HttpConnection
from .plan import BARE, MEMORY, NCHAN, REDIS
from .wire import Wire

_LIVE: dict[int, subprocess.Popen[bytes]] = {}
"""The servers started and not yet stopped, by pid."""
_PR_SET_PDEATHSIG = 1
_PORTS_FROM = 10_000
"""Servers listen on a port from here up to the ephemeral range."""


@dataclass(slots=True)
class Server:
    """A running server: how to reach it, and its processes for CPU and memory readings."""

    label: str
    wire: Wire
    process: subprocess.Popen[bytes]
    version: str = ""

    def pids(self) -> list[int]:
        return procstat.tree(self.process.pid)

    def cpu_seconds(self) -> float:
        return procstat.cpu_seconds(self.pids())

    def memory_kib(self) -> int:
        return procstat.memory_kib(self.pids())


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return limit


def _free_port() -> int:
    """A free loopback port below the ephemeral range: the load client's connections (and
    other programs') take their local ports from that range, and one could take a port
    picked there before the server binds it."""
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randrange(_PORTS_FROM, low) if low > _PORTS_FROM else 0
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            bound: int = sock.getsockname()[1]
            return bound
    raise BenchError("no free port found for a server")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up now: the child only calls it


def _die_with_parent() -> None:
    # Runs in the child before exec: if the bench is killed outright, so is the server.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench, which stops servers itself
            preexec_fn=_die_with_parent,
        )
    _LIVE[process.pid] = process
    return process


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        for member in reversed(procstat.tree(process.pid)):
            with contextlib.suppress(OSError):
                os.kill(member, signal.SIGKILL)
    else:  # nginx workers may outlive their master
        for member in procstat.tree(process.pid)[1:]:
            with contextlib.suppress(OSError):
                os.kill(member, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    _LIVE.pop(process.pid, None)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_LIVE.values()):
        _kill_tree(process)


async def _stop(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM, then SIGKILL for the whole tree if it is not gone within ``grace`` s."""
    if process.poll() is None:
        process.terminate()
        await wait_exited(process, grace)
    _kill_tree(process)


async def wait_exited(process: subprocess.Popen[bytes], within: float) -> None:
    """Wait up to ``within`` s for ``process`` to end, on a pidfd (no thread, no polling)."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    loop.add_reader(pidfd, ended.set)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), within)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def _wait_ready(wire: Wire, process: subprocess.Popen[bytes], log: Path) -> str:
    """Poll the health route until it answers 200; its body (nginx: the Nchan version)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = _log_tail(log)
            raise BenchError(f"server exited with {process.returncode} at start:\n{tail}")
        try:
            conn = await HttpConnection.open(wire.host, wire.port)
            try:
                status, body = await asyncio.wait_for(conn.request(wire.health()), 5)
            finally:
                conn.close()
            if status == 200:
                return body.decode(errors="replace")
        except (OSError, BenchError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    raise BenchError(f"server did not answer its health route within 30 s; see {log}")


def _tailcast_argv() -> list[str]:
    script = Path(sys.executable).with_name("tailcast")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from app.cli import main; raise SystemExit(main())"]


@contextlib.asynccontextmanager
async def tailcast(
    logs: Path, backend: str = "memory", prefix: str = "", workers: int = 1
) -> AsyncIterator[Server]:
    """Tailcast on a free loopback port; ``prefix`` names its Redis keys; ``workers`` > 1
    runs uvicorn's process manager with that many worker processes."""
    wire = Wire("tailcast", "127.0.0.1", _free_port(), secrets.token_urlsafe(16))
    env = {
        **os.environ,
        "TAILCAST_HOST": wire.host,
        "TAILCAST_PORT": str(wire.port),
        "TAILCAST_PUBLISH_TOKEN": wire.token,
        "TAILCAST_LOG_LEVEL": os.environ.get("TAILCAST_LOG_LEVEL", "warning"),
        "TAILCAST_BACKEND": backend,
        "TAILCAST_WORKERS": str(workers),
    }
    if prefix:
        env["TAILCAST_REDIS_PREFIX"] = prefix
    label = MEMORY if backend == "memory" else REDIS
    if workers > 1:
        label += f"-w{workers}"
    log = logs / f"{label}.log"
    process = _spawn([*_tailcast_argv(), "serve"], env, log)
    try:
        body = await _wait_ready(wire, process, log)
        if workers > 1:
            await _wait_workers(process, workers, log)
        yield Server(label, wire, process, _json_field(body, "version"))
    finally:
        await _stop(process)


async def _wait_workers(process: subprocess.Popen[bytes], workers: int, log: Path) -> None:
    """Wait until ``workers`` worker processes exist and have finished starting (their CPU
    time stands still): a worker still starting would leave the first requests to others."""
    deadline = time.monotonic() + 30
    previous = -1.0
    while True:
        spawned = [pid for pid in procstat.tree(process.pid) if is_worker(pid)]
        used = procstat.cpu_seconds(spawned)
        if len(spawned) >= workers and used == previous:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{workers} workers did not settle within 30 s; see {log}")
        previous = used
        await asyncio.sleep(0.5)


def is_worker(pid: int) -> bool:
    """Whether ``pid`` is a worker uvicorn's process manager started (not its master, nor
    multiprocessing's resource tracker)."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@contextlib.asynccontextmanager
async def bare(logs: Path, workers: int = 1) -> AsyncIterator[Server]:
    """The bare uvicorn app (`bench.bare`), the ceiling for single-item POSTs; ``workers``
    > 1 runs uvicorn's process manager with that many worker processes."""
    wire = Wire("bare", "127.0.0.1", _free_port())
    argv = [sys.executable, "-m", "bench.bare", "--host", wire.host, "--port", str(wire.port)]
    label = BARE
    if workers > 1:
        argv += ["--workers", str(workers)]
        label += f"-w{workers}"
    log = logs / f"{label}.log"
    process = _spawn(argv, dict(os.environ), log)
    try:
        body = await _wait_ready(wire, process, log)
        if workers > 1:
            await _wait_workers(process, workers, log)
        yield Server(label, wire, process, _json_field(body, "version"))
    finally:
        await _stop(process)


@contextlib.asynccontextmanager
async def nginx_nchan(logs: Path, nofile: int) -> AsyncIterator[Server]:
    """nginx with one worker and the Nchan module, configured in a temporary prefix."""
    binary = nchan.find_nginx()
    prefix = Path(tempfile.mkdtemp(prefix="bench-nchan-"))
    wire = Wire("nchan", "127.0.0.1", _free_port())
    conf = prefix / "nginx.conf"
    conf.write_text(nchan.config(prefix, wire.port, nofile))
    log = logs / "nchan.log"
    argv = [str(binary), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    process = _spawn(argv, dict(os.environ), log)
    try:
        version = await _wait_ready(wire, process, log)
        yield Server(NCHAN, wire, process, version.strip())
    finally:
        await _stop(process)
        _keep_error_log(prefix / "error.log", log)
        shutil.rmtree(prefix, ignore_errors=True)


def _keep_error_log(error_log: Path, log: Path) -> None:
    if error_log.exists():
        with log.open("a") as out:
            out.write(error_log.read_text(errors="replace"))


def _json_field(body: str, name: str) -> str:
    try:
        return str(json.loads(body).get(name, ""))
    except (ValueError, AttributeError):
        return ""


def redis_version(url: str) -> str | None:
    """The Redis server's version, or None when it cannot be reached."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        with client:
            return str(client.info("server")["redis_version"])
    except (redis.RedisError, OSError):
        return None


def delete_prefix(url: str, prefix: str) -> int:
    """Delete the keys the bench's Tailcast wrote under ``prefix``; how many there were."""
    import redis

    with redis.Redis.from_url(url, socket_timeout=5) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
