"""Connection limits fail politely: slow or silent connections are closed, the server stays
below its descriptor limit, streams past `max_streams` get a 503, and publishes and
/healthz still answer meanwhile."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.http.helpers import assert_problem
from tests.support import RunningServer, run_server, run_server_process


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _until_closed(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def _drip(socks: list[socket.socket], data: bytes, stop: threading.Event) -> None:
    """Send ``data`` one byte per 0.2 s on every socket, as a slowloris client does."""
    for byte in data:
        if stop.wait(0.2):
            return
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.send(bytes([byte]))


def test_silent_and_dripping_connections_are_closed_after_request_timeout(
    tmp_path: Path,
) -> None:
    with run_server_process(tmp_path / "server.log", request_timeout=1) as server:
        silent = [_connect(server.port) for _ in range(50)]
        dripping = [_connect(server.port) for _ in range(20)]
        slow_body = _connect(server.port)
        slow_body.sendall(
            b"POST /items HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
            + server.token.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        stop = threading.Event()
        head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100
        dripper = threading.Thread(target=_drip, args=(dripping, head, stop), daemon=True)
        dripper.start()
        try:
            started = time.monotonic()
            assert all(_until_closed(sock) == b"" for sock in silent)
            answers = [_until_closed(sock) for sock in [*dripping, slow_body]]
            closed_after = time.monotonic() - started
        finally:
            stop.set()
            for sock in [*silent, *dripping, slow_body]:
                sock.close()
        timed_out = _metric(
            server.url, 'tailcast_connections_closed_total{reason="request_timeout"}'
        )
        log = server.log()
    assert closed_after < 4
    for answer in answers:  # they sent part of a request: told why
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:100]
        assert b"application/problem+json" in answer
    assert timed_out == 71
    assert "that sent no whole request within 1 s (request_timeout)" in log


def test_requests_that_are_not_http_are_counted_and_logged_in_a_summary_not_each(
    tmp_path: Path,
) -> None:
    with run_server_process(tmp_path / "server.log") as server:
        answers = []
        for _ in range(30):
            with _connect(server.port) as sock:
                sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                answers.append(_until_closed(sock))
        unparsable = _metric(server.url, 'tailcast_connections_closed_total{reason="unparsable"}')
        log = server.log()
    assert all(answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") for answer in answers)
    assert unparsable == 30
    assert "Invalid HTTP request" not in log
    # The first at once; the others in the next summary, at most every 10 s.
    assert "closed 1 after a request that was not valid HTTP (answered 400)" in log


def test_at_the_descriptor_limit_new_clients_are_still_served(tmp_path: Path) -> None:
    # 300 connections that send part of a head, or nothing, against a limit of 256
    # descriptors: the oldest make room.
    with (
        run_server_process(tmp_path / "server.log", nofile=(256, 256)) as server,
        ExitStack() as stack,
    ):
        silent = [stack.enter_context(_connect(server.port)) for _ in range(100)]
        for sock in silent:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: a")
        time.sleep(0.2)  # the server has read them
        silent += [stack.enter_context(_connect(server.port)) for _ in range(200)]
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/healthz").status_code == 200
            posted = client.post("/items", json={"data": 1}, headers=server.auth)
            assert posted.status_code == 201
        assert _until_closed(silent[0]) == b""  # the oldest gave way
        evicted = _metric(server.url, 'tailcast_connections_closed_total{reason="evicted"}')
        log = server.log()
    assert evicted >= 300 - 192  # 256 descriptors: 192 connections
    assert "descriptor limit 256: at most 192 connections, 160 of them streams" in log
    assert "idle to make room (max_connections=192)" in log


def test_the_descriptor_limit_is_raised_to_the_hard_limit_at_start(tmp_path: Path) -> None:
    with run_server_process(tmp_path / "server.log", nofile=(256, 1024)) as server:
        log = server.log()
    assert "descriptor limit 1024 (raised from 256): at most 960 connections" in log


@contextmanager
def _streams(server: RunningServer, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(_connect(server.port))
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
            socks.append(sock)
        yield socks


@pytest.mark.parametrize("cors_origins", ["", "https://app.example"], ids=["fast", "routed"])
def test_streams_past_max_streams_get_503_while_publishes_and_healthz_answer(
    cors_origins: str,
) -> None:
    with (
        run_server(max_streams=50, cors_origins=cors_origins) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
        _streams(server, 50) as streams,
    ):
        refused = client.get("/stream")
        assert client.get("/healthz").status_code == 200
        assert client.post("/items", json={"data": 1}, headers=server.auth).status_code == 201
        assert _metric(server.url, "tailcast_streams_refused_total") == 1
        streams[0].close()
        deadline = time.monotonic() + 5
        while server.service.streams and len(server.service.streams) >= 50:
            assert time.monotonic() < deadline, "a closed stream was not let go"
            time.sleep(0.02)
        with client.stream("GET", "/stream") as again:
            assert again.status_code == 200
    body = assert_problem(refused, 503)
    assert refused.headers["retry-after"] == "5"
    assert "50 streams are open" in body["detail"]
    assert "max_streams" in body["detail"]


def test_a_connection_past_max_connections_with_none_idle_gets_503(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tailcast")
    with (
        run_server(max_connections=10, max_streams=10) as server,
        _streams(server, 10),
        _connect(server.port) as extra,
    ):
        answer = _until_closed(extra)
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer[:100]
    assert b"retry-after: 5\r\n" in answer
    assert b"max_connections" in answer
    assert "refused 1 with 503: max_connections (10) reached and none idle" in caplog.text


def test_a_request_head_over_128_kib_is_refused_with_431(server: RunningServer) -> None:
    with _connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        try:
            for _ in range(100):
                sock.sendall(b"X-Filler: " + b"a" * 10_000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server mid-way, as it should be
        answer = _until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:100]
    assert b"128 KiB" in answer
