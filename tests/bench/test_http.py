"""The load client's connection: pipelined requests get their own responses, in order,
however the bytes are split on the wire."""

from __future__ import annotations

import asyncio

from bench.http import HttpConnection
from bench.wire import Wire
from tests.bench.helpers import playing
from tests.support import RunningServer

_RESPONSES = [
    b'HTTP/1.1 201 Created\r\ncontent-length: 7\r\n\r\n{"a":1}',
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"HTTP/1.1 422 Unprocessable Content\r\ncontent-length: 2\r\n\r\nno",
    b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
]
_EXPECTED = [(201, b'{"a":1}'), (200, b"abcde"), (422, b"no"), (204, b""), (200, b"")]


async def _replay_cut(raw: bytes, seed: int) -> list[tuple[int, bytes]]:
    """Pipeline requests to a server that answers them all with ``raw`` cut in random pieces."""
    async with playing(raw, seed, requests=len(_RESPONSES)) as (host, port):
        conn = await HttpConnection.open(host, port)
        try:
            waiting = [conn.send(b"GET / HTTP/1.1\r\n\r\n") for _ in _RESPONSES]
            async with asyncio.timeout(10):
                return list(await asyncio.gather(*waiting))
        finally:
            conn.close()


async def test_pipelined_responses_cut_anywhere_resolve_in_order() -> None:
    raw = b"".join(_RESPONSES)
    for seed in range(20):
        assert await _replay_cut(raw, seed) == _EXPECTED


async def test_pipelined_publishes_are_answered_in_order(server: RunningServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    wire = Wire("tailcast", "127.0.0.1", port, server.token)
    bad = b"POST /items HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    bad += b"authorization: Bearer %s\r\ncontent-length: 1\r\n\r\n{" % server.token.encode()
    requests = [wire.publish("bench", seq) for seq in range(10)]
    requests.insert(5, bad)
    conn = await HttpConnection.open(wire.host, wire.port)
    try:
        waiting = [conn.send(request) for request in requests]
        async with asyncio.timeout(10):
            answers = await asyncio.gather(*waiting)
    finally:
        conn.close()
    # The malformed body in the middle (not valid JSON) gets its 400 in its own place.
    assert [status for status, _ in answers] == [201] * 5 + [400] + [201] * 5
    assert conn.outstanding == 0
