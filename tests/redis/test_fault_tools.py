"""The fault tests' own tools do what they claim: the proxy rewrites the master's port in
Sentinel answers however the bytes are cut, drops and refuses connections while cut, and
the history check counts duplicates, disorder, and gaps a ``reset`` covers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.redis.helpers import SseEvent
from tests.redis.history import read
from tests.redis.proxy import PortRewriter, Proxy

REPLY = b"*4\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n$5\r\n41234\r\n"


@pytest.mark.parametrize("cut", range(1, len(REPLY)))
def test_the_rewriter_replaces_a_port_split_anywhere(cut: int) -> None:
    rewriter = PortRewriter({41234: 50001})
    out = rewriter.feed(REPLY[:cut]) + rewriter.feed(REPLY[cut:])
    assert out == REPLY.replace(b"41234", b"50001")


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server on loopback, one thread per connection."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def _answered(port: int) -> bool:
    """Whether a connection to ``port`` echoes (not reset, not closed unanswered)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"ping")
            return sock.recv(4) == b"ping"
    except ConnectionError:
        return False


def test_the_proxy_forwards_drops_refuses_and_heals(echo_port: int) -> None:
    with Proxy([echo_port], []) as proxy:
        port = proxy.port(echo_port)
        assert _answered(port)
        held = socket.create_connection(("127.0.0.1", port), timeout=2)
        held.sendall(b"x")
        assert held.recv(1) == b"x"
        proxy.cut()
        assert held.recv(1) == b""  # dropped
        held.close()
        assert not _answered(port)  # refused
        proxy.heal()
        assert _answered(port)


def _item(id: str) -> SseEvent:
    return SseEvent("item", id, "{}")


def _reset(requested: str | None) -> SseEvent:
    data = '{"reason":"restarted","requested":%s,"oldest":null}' % (
        "null" if requested is None else f'"{requested}"'
    )
    return SseEvent("reset", None, data)


def test_a_reading_finds_duplicates_disorder_and_misnamed_resets() -> None:
    reading = read([_item("1-0"), _item("2-0"), _item("2-0"), _item("1-5")], ["1-0", "2-0"])
    assert reading.duplicates == [(2, "2-0")]
    assert reading.disorder == [(3, "1-5")]
    assert reading.missing == []
    misnamed = read([_item("1-0"), _reset("0-1")], [])
    assert [r.requested for r in misnamed.misnamed] == ["0-1"]


def test_a_reset_covers_the_ids_between_where_it_stopped_and_what_came_next() -> None:
    # After the reset the whole cache is replayed: 1-0 again is not a duplicate.
    events = [_item("1-0"), _item("2-0"), _reset("2-0"), _item("1-0"), _item("9-0")]
    reading = read(events, ["1-0", "2-0", "3-0", "5-0", "9-0", "10-0"])
    assert reading.duplicates == []
    assert reading.missing == ["10-0"]  # 3-0 and 5-0 are covered; 10-0 is past 9-0
