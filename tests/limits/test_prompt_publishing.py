"""Publishing stays prompt while thousands of streams on other topics connect and sit idle."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support import ServerProcess, run_server_process

STREAMS = 8_000

# Opens idle streams from a process of its own (its own event loop, garbage collector and
# descriptor limit), prints "open" once all are, and holds them until stdin closes.
_OPENER = """
import asyncio, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, count = int(sys.argv[1]), int(sys.argv[2])
async def main():
    gate = asyncio.Semaphore(1000)
    writers = []
    async def one():
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /stream?topic=idle HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n")
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            writers.append(writer)
    await asyncio.gather(*(one() for _ in range(count)))
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""


def _post_seconds(client: httpx.Client, server: ServerProcess) -> float:
    started = time.monotonic()
    response = client.post("/items", json={"topic": "busy", "data": 1}, headers=server.auth)
    assert response.status_code == 201, response.text
    return time.monotonic() - started


def test_publishes_stay_prompt_while_many_idle_streams_connect(tmp_path: Path) -> None:
    with (
        run_server_process(tmp_path / "server.log") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        alone = _publishing_cpu(client, server)
        opener = subprocess.Popen(
            [sys.executable, "-c", _OPENER, str(server.port), str(STREAMS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        opened = threading.Event()
        threading.Thread(target=_wait_for_open, args=(opener, opened), daemon=True).start()
        try:
            while_connecting = []
            deadline = time.monotonic() + 15
            while not opened.is_set() and time.monotonic() < deadline:
                while_connecting.append(_post_seconds(client, server))
            assert opened.wait(1), "the streams did not all open"
            beside_idle = _publishing_cpu(client, server)
            assert client.get("/healthz").json()["subscribers"] == STREAMS
        finally:
            opener.communicate(timeout=10)
    # Each publish used to visit every idle stream: ten times the server's CPU time.
    assert beside_idle < 4 * alone + 0.2, (alone, beside_idle)
    assert max(while_connecting) < 1.0, sorted(while_connecting)[-5:]


def _publishing_cpu(client: httpx.Client, server: ServerProcess) -> float:
    """The server's CPU time for 60 publishes, 50 a second (each gets a fan-out round)."""
    before = server.cpu_seconds()
    for _ in range(60):
        _post_seconds(client, server)
        time.sleep(0.02)
    return server.cpu_seconds() - before


def _wait_for_open(opener: subprocess.Popen[str], opened: threading.Event) -> None:
    assert opener.stdout is not None
    if opener.stdout.readline() == "open\n":
        opened.set()
