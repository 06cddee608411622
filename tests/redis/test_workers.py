"""``tailcast serve --workers N``: refused with the in-memory backend, served by N worker
processes with Redis, and stopped by SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx

from tests.redis.helpers import (
    AUTH,
    ROOT,
    TOKEN,
    Subscriber,
    eventually,
    other_clients,
    spawn_instance,
)
from tests.redis_support import RedisProcess


def _workers(pid: int) -> list[int]:
    """Live worker processes of the manager ``pid``: its children started by
    multiprocessing's spawn (not its resource tracker), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def _tails(redis_server: RedisProcess) -> int:
    """Connections blocked in XREAD: one tail per serving process."""
    with redis_server.client() as client:
        return sum(1 for c in other_clients(client) if c["cmd"] == "xread")


def test_workers_with_the_memory_backend_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "TAILCAST_PUBLISH_TOKEN": TOKEN, "TAILCAST_BACKEND": "memory"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result
    assert "--workers" in result.stderr
    assert "--backend redis://" in result.stderr
    assert result.stdout == ""  # refused before the banner: nothing was served


async def test_two_workers_on_redis_serve_then_stop_on_sigterm(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    instance = spawn_instance(redis_server.url, tmp_path, "--workers", "2")
    try:
        await anyio.to_thread.run_sync(instance.wait_ready)
        workers = _workers(instance.process.pid)
        assert len(workers) == 2, instance.log
        deadline = time.monotonic() + 10
        while _tails(redis_server) < 2:
            assert time.monotonic() < deadline, f"{_tails(redis_server)} tails: {instance.log}"
            await anyio.sleep(0.05)

        subscriber = Subscriber([instance.url])
        async with httpx.AsyncClient(timeout=5) as client, anyio.create_task_group() as tasks:
            tasks.start_soon(subscriber.run, client)
            with anyio.fail_after(10):
                await subscriber.live.wait()
            response = await client.post(instance.url + "/items", json={"data": 1}, headers=AUTH)
            assert response.status_code == 201, response.text
            await eventually(lambda: bool(subscriber.items), within=10)
            tasks.cancel_scope.cancel()
        assert subscriber.items == [response.json()["id"]]

        started = time.monotonic()
        await anyio.to_thread.run_sync(instance.terminate)  # fails after 15 s
        assert time.monotonic() - started < 15
        assert _alive(workers) == [], instance.log  # the manager reaps them before it exits
    finally:
        instance.stop()
