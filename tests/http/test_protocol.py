"""Requests uvicorn refuses before the app sees them are answered as problems too."""

from __future__ import annotations

import json
import socket

import pytest

from tests.http.helpers import PROBLEM_JSON
from tests.support import RunningServer


@pytest.fixture(scope="module", autouse=True)
def backend() -> str:
    """The HTTP layer's alone: the in-memory backend is enough."""
    return "memory"


def _exchange(server: RunningServer, request: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send raw bytes; the status line, headers and body the server answers with."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return status.encode(), headers, body


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /items?topic=" + b"a" * 70_000 + b" HTTP/1.1",  # a URL over 64 KiB
        b"GET /items HTTP/1.1 extra",
        b"NOT HTTP AT ALL",
    ],
    ids=["url_over_64_kib", "malformed_request_line", "not_http"],
)
def test_a_request_uvicorn_cannot_parse_is_a_problem(
    server: RunningServer, request_line: bytes, http: str
) -> None:
    head = request_line + b"\r\nHost: tailcast\r\nConnection: close\r\n\r\n"
    status, headers, body = _exchange(server, head)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["x-content-type-options"] == "nosniff"
    problem = json.loads(body)
    assert problem["status"] == 400
    if http == "h11" and len(request_line) > 65_536:
        # The 64 KiB URL cap is httptools' parser's; h11 takes a head up to the 128 KiB
        # cap, so the app refuses the over-long topic itself (a problem all the same).
        assert "topic" in problem["detail"]
    else:
        assert "64 KiB" in problem["detail"]


def test_the_server_runs_the_http_implementation_asked_for(
    server: RunningServer, http: str
) -> None:
    protocol = server.server.config.http
    assert isinstance(protocol, type)
    implementation = f"uvicorn.protocols.http.{http}_impl"
    assert implementation in {cls.__module__ for cls in protocol.__mro__}
