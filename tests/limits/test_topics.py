"""A read names at most `max_topics` topics; more is refused with a problem naming the
limit, before any stream starts, on both ways a stream is served."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.http.helpers import assert_problem
from tests.support import run_server, run_server_process

MIB = 1024 * 1024


def _topics(count: int) -> dict[str, list[str]]:
    return {"topic": [f"t{n}" for n in range(count)]}


def test_streams_naming_thousands_of_topics_are_refused_and_cost_no_memory(
    tmp_path: Path,
) -> None:
    query = "&".join(f"topic=t{n}" for n in range(5_000))
    request = f"GET /stream?{query} HTTP/1.1\r\nHost: tailcast\r\n\r\n".encode()
    with run_server_process(tmp_path / "server.log") as server:
        before = server.rss()
        answers, held = [], []
        try:
            for _ in range(100):  # kept open, as an attacker would
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                held.append(sock)
                sock.sendall(request)
                answers.append(_answer(sock))
            grown = server.rss() - before
        finally:
            for sock in held:
                sock.close()
    assert grown < 20 * MIB, f"RSS grew by {grown / MIB:.0f} MiB"
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert b"5000 topic parameters; at most 100 are allowed (max_topics)" in answer


def _answer(sock: socket.socket) -> bytes:
    """The response's head, and its body if it is not a stream."""
    answer = sock.recv(65536)
    if answer.startswith(b"HTTP/1.1 400 "):
        while not answer.endswith(b"}"):
            answer += sock.recv(65536)
    return answer


@pytest.mark.parametrize("cors_origins", ["", "https://app.example"], ids=["fast", "routed"])
@pytest.mark.parametrize("path", ["/stream", "/items"])
def test_more_topics_than_max_topics_are_refused(cors_origins: str, path: str) -> None:
    # With CORS on, /stream goes through FastAPI's routing instead of the short path.
    with (
        run_server(max_topics=3, cors_origins=cors_origins) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        body = assert_problem(client.get(path, params=_topics(4)), 400)
        assert body["detail"] == "4 topic parameters; at most 3 are allowed (max_topics)."
        with client.stream("GET", path, params=_topics(3)) as response:
            assert response.status_code == 200
