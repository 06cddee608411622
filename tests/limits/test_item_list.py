"""`GET /items` costs the server a bounded buffer per client, however large the cache and
however slowly the client reads; a client that stops reading is dropped."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.http.helpers import publish, strictly_increasing
from tests.support import RunningServer, run_server, run_server_process

MIB = 1024 * 1024
PAD = "x" * 1000  # ~1.1 KB per item


def _fill(url: str, auth: dict[str, str], count: int) -> None:
    """Cache ``count`` items of about 1.1 KB, with keys "0", "1", ..."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for start in range(0, count, 500):
            batch = [{"key": str(n), "data": PAD} for n in range(start, min(count, start + 500))]
            publish(client, auth, batch)


@contextmanager
def _not_reading(port: int, request: bytes) -> Iterator[socket.socket]:
    """A connection that sends ``request`` and then reads nothing (small receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with sock:
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        yield sock


def _healthz_seconds(url: str) -> float:
    started = time.monotonic()
    assert httpx.get(f"{url}/healthz", timeout=15).status_code == 200
    return time.monotonic() - started


def test_clients_that_never_read_a_large_listing_cost_little_memory(tmp_path: Path) -> None:
    # 20,000 items of ~1.1 KB: each listing is ~22 MB; ten clients that never read.
    with run_server_process(tmp_path / "server.log", send_timeout=60) as server:
        _fill(server.url, server.auth, 20_000)
        before = server.rss()
        with ExitStack() as stack:
            for _ in range(10):
                stack.enter_context(_not_reading(server.port, b"GET /items HTTP/1.1\r\n\r\n"))
            # /healthz answers promptly meanwhile (it is served after the listings began).
            assert _healthz_seconds(server.url) < 2
            time.sleep(0.5)
            grown = server.rss() - before
        assert grown < 30 * MIB, f"RSS grew by {grown / MIB:.0f} MiB"


def test_a_listing_larger_than_a_page_and_a_chunk_is_complete_and_in_order(
    server: RunningServer,
) -> None:
    _fill(server.url, server.auth, 3_000)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        listed = client.get("/items").json()
        limited = client.get("/items", params={"limit": 2_500}).json()
        after = client.get("/items", params={"since": listed[999]["id"]}).json()
    assert [item["key"] for item in listed] == [str(n) for n in range(3_000)]
    assert strictly_increasing([item["id"] for item in listed])
    assert limited == listed[:2_500]
    assert after == listed[1_000:]


def test_a_listing_client_that_stops_reading_is_dropped_after_send_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tailcast")
    with run_server(send_timeout=1) as server:
        _fill(server.url, server.auth, 10_000)  # ~11 MB, beyond what sockets buffer
        with _not_reading(server.port, b"GET /items HTTP/1.1\r\n\r\n") as sock:
            time.sleep(3)
            received = 0
            sock.settimeout(5)
            try:
                while chunk := sock.recv(1 << 16):
                    received += len(chunk)
            except ConnectionResetError:
                pass
        assert received < 10 * MIB
    assert "dropping a GET /items client that read nothing for 1 s" in caplog.text
