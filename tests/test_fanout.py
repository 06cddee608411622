"""The fan-out writes live items to caught-up streams; under load, one write carries
several items, and a stream still gets every item once, in order."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from app.http.fanout import Fanout, Round
from app.http.sse import item_frame
from app.server.uvicorn_internals import framed
from streaming import Draft, Item, MemoryBackend
from tests.redis.helpers import TOKEN, Instance, running_instances
from tests.support import RunningServer

PIPELINED = 10


class _RawStream:
    """A subscriber on a plain socket that keeps the body's chunks as the server wrote them."""

    def __init__(self, server: RunningServer | Instance, query: str = "") -> None:
        address = urlsplit(server.url)
        self.sock = socket.create_connection((address.hostname, address.port), timeout=10)
        self.sock.sendall(b"GET /stream%s HTTP/1.1\r\nhost: test\r\n\r\n" % query.encode())
        self._buffer = b""
        self._head_done = False

    def chunks(self) -> list[bytes]:
        """The chunks that have arrived whole so far (blocks until at least one has)."""
        self._buffer += self.sock.recv(65536)
        if not self._head_done:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return []
            assert head.startswith(b"HTTP/1.1 200"), head
            self._buffer, self._head_done = rest, True
        chunks = []
        while (eol := self._buffer.find(b"\r\n")) >= 0:
            size = int(self._buffer[:eol], 16)
            if len(self._buffer) < eol + 2 + size + 2:
                break
            chunks.append(self._buffer[eol + 2 : eol + 2 + size])
            self._buffer = self._buffer[eol + 2 + size + 2 :]
        return chunks

    def until_live(self) -> None:
        while not any(b"event: live" in chunk for chunk in self.chunks()):
            pass

    def item_chunks(self, count: int) -> list[list[int]]:
        """Read until ``count`` items arrived: each chunk's items' ``data.n``, chunk by chunk."""
        seen: list[list[int]] = []
        deadline = time.monotonic() + 10
        while sum(map(len, seen)) < count and time.monotonic() < deadline:
            for chunk in self.chunks():
                numbers = [
                    json.loads(line[len(b"data: ") :])["data"]["n"]
                    for line in chunk.split(b"\n")
                    if line.startswith(b"data: ") and b'"n"' in line
                ]
                if numbers:
                    seen.append(numbers)
        return seen

    def close(self) -> None:
        self.sock.close()


def _pipelined_publishes(server: RunningServer, count: int) -> list[bytes]:
    """Send ``count`` single-item POSTs in one write on one connection; their responses."""
    address = urlsplit(server.url)
    requests = b""
    for n in range(count):
        body = json.dumps({"topic": "t", "data": {"n": n}}).encode()
        requests += (
            b"POST /items HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
            b"authorization: Bearer %s\r\ncontent-length: %d\r\n\r\n%s"
            % (server.token.encode(), len(body), body)
        )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(requests)
        received = b""
        while received.count(b"HTTP/1.1 ") < count or not received.endswith(b"}"):
            received += sock.recv(65536)
    return re.findall(rb"HTTP/1\.1 [^\r]*", received)


def test_items_from_pipelined_publishes_go_out_together(server: RunningServer) -> None:
    stream = _RawStream(server)
    try:
        stream.until_live()
        statuses = _pipelined_publishes(server, PIPELINED)
        chunks = stream.item_chunks(PIPELINED)
    finally:
        stream.close()
    assert statuses == [b"HTTP/1.1 201 Created"] * PIPELINED
    assert [n for chunk in chunks for n in chunk] == list(range(PIPELINED))
    # One round per publish would give one write per item; the fan-out waits for the
    # publishes already in the server's hands, so the items share far fewer writes.
    assert len(chunks) <= PIPELINED // 2, chunks


def test_a_round_encodes_each_shared_batch_once_whatever_the_order_of_streams() -> None:
    backend = MemoryBackend()
    on_a, on_b = backend.subscribe(["a"]), backend.subscribe(["b"])
    for subscription in (on_a, on_b):
        while subscription.poll():
            pass
    backend.publish_now([Draft(1, topic="a"), Draft(2, topic="b")])
    current = Round(0.0)
    batch_a, batch_b = on_a.poll(current.batches), on_b.poll(current.batches)
    assert batch_a is not None
    assert batch_b is not None
    first_a = current.chunk(batch_a)
    first_b = current.chunk(batch_b)
    # Streams on the two topics interleave; each batch's chunk is still built only once.
    assert current.chunk(batch_a) is first_a
    assert current.chunk(batch_b) is first_b
    assert isinstance(batch_a[0], Item)
    assert first_a == framed(item_frame(batch_a[0]))


ROUND_STREAMS = 600
BIG = "x" * 65_536


@pytest.fixture
def process(tmp_path: Path) -> Iterator[Instance]:
    """The service in a process of its own: the test's threads can't slow its rounds."""
    with running_instances("memory", tmp_path, 1, "--heartbeat", "30") as [instance]:
        yield instance


def _post_on(sock: socket.socket, payload: dict[str, object]) -> bytes:
    body = json.dumps(payload).encode()
    sock.sendall(
        b"POST /items HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer %s\r\ncontent-length: %d\r\n\r\n%s"
        % (TOKEN.encode(), len(body), body)
    )
    received = b""
    while not received.endswith(b"}"):
        received += sock.recv(65536)
    return received.partition(b"\r\n")[0]


def test_a_publish_during_a_round_is_answered_and_rides_in_that_round(process: Instance) -> None:
    # A round writes a big item to many streams. A publish sent once the first stream has
    # the item is answered between two slices of the round, so the streams the round has
    # not reached yet get both items in one write; every stream gets each item once.
    streams = [_RawStream(process) for _ in range(ROUND_STREAMS)]
    address = urlsplit(process.url)
    try:
        for stream in streams:
            stream.until_live()
        with (
            socket.create_connection((address.hostname, address.port), timeout=10) as first,
            socket.create_connection((address.hostname, address.port), timeout=10) as second,
        ):
            assert _post_on(first, {"data": {"n": 0, "big": BIG}}).endswith(b"201 Created")
            assert streams[0].item_chunks(1) == [[0]]
            assert _post_on(second, {"data": {"n": 1}}).endswith(b"201 Created")
        received = [s.item_chunks(2) for s in streams[1:]]
    finally:
        for stream in streams:
            stream.close()
    for chunks in received:
        assert [n for chunk in chunks for n in chunk] == [0, 1]
    together = sum(1 for chunks in received if chunks == [[0, 1]])
    assert together > 0, "the second publish waited for the whole round"


class _Recorder:
    """A `Writer` that records the rounds it was flushed in; or fails, when told to."""

    def __init__(self, *, fails: bool = False, topics: frozenset[str] = frozenset()) -> None:
        self.topics = topics
        self.fails = fails
        self.flushes = 0
        self.resumed = False
        self.aborted = False

    def flush(self, current: Round) -> bool:
        self.flushes += 1
        if self.fails:
            raise RuntimeError("a stream's fault")
        return True

    def resume(self) -> None:
        self.resumed = True

    def abort(self) -> None:
        self.aborted = True


async def _until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (at most 5 s): on a loaded machine a round may come
    late, but it comes."""
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - polls a recorder's plain counter
            await anyio.sleep(0.001)


async def test_a_stream_that_fails_is_handed_back_and_the_others_go_on() -> None:
    backend = MemoryBackend()
    fanout = Fanout(backend.replica.broadcast)
    failing, healthy = _Recorder(fails=True), _Recorder()
    fanout.add(failing)
    fanout.add(healthy)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(fanout.run)
        await anyio.sleep(0.01)
        for round_ in range(1, 4):
            backend.publish_now([Draft(1)])
            await _until(lambda: healthy.flushes >= round_)  # noqa: B023 - awaited at once
        await anyio.sleep(0.01)
        flushed = healthy.flushes
        backend.replica.close()
    assert failing.resumed
    assert failing.flushes == 1
    assert flushed == 3


async def test_a_stream_handed_to_an_idle_fan_out_gets_what_is_published_after() -> None:
    # With no stream to write to the fan-out sleeps through publishes; a stream handed
    # over just before a publish, before the fan-out has woken, still gets its round.
    backend = MemoryBackend()
    fanout = Fanout(backend.replica.broadcast)
    writer = _Recorder()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(fanout.run)
            await anyio.sleep(0.01)
            backend.publish_now([Draft(0)])  # nobody to write to
            await anyio.sleep(0.01)
            fanout.add(writer)
            backend.publish_now([Draft(1)])
            await _until(lambda: writer.flushes >= 1)
            await anyio.sleep(0.01)
            flushed = writer.flushes
            backend.replica.close()
    assert flushed == 1


async def test_an_idle_fan_out_ends_when_the_log_closes() -> None:
    backend = MemoryBackend()
    fanout = Fanout(backend.replica.broadcast)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(fanout.run)
            await anyio.sleep(0.01)
            backend.replica.close()


async def test_a_nudge_during_a_round_gets_a_round_of_its_own() -> None:
    backend = MemoryBackend()
    broadcast = backend.replica.broadcast
    fanout = Fanout(broadcast)
    writers = [_Recorder() for _ in range(200)]  # several slices
    for writer in writers:
        fanout.add(writer)

    class _Nudger(_Recorder):
        def flush(self, current: Round) -> bool:
            if self.flushes == 0:
                broadcast.nudge()  # as the heartbeat timer would, between two slices
            return super().flush(current)

    nudger = _Nudger()
    fanout.add(nudger)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(fanout.run)
        await anyio.sleep(0.01)
        backend.publish_now([Draft(1)])
        await _until(lambda: nudger.flushes >= 2)
        await anyio.sleep(0.01)
        flushed = nudger.flushes
        backend.replica.close()
    assert flushed == 2


async def test_a_publish_visits_only_the_streams_on_its_topics_and_a_nudge_visits_all() -> None:
    # Thousands of idle streams on other topics must not cost every publish.
    backend = MemoryBackend()
    broadcast = backend.replica.broadcast
    fanout = Fanout(broadcast)
    on_a, on_b, on_all = (
        _Recorder(topics=frozenset({"a"})),
        _Recorder(topics=frozenset({"b"})),
        _Recorder(),
    )
    idle = [_Recorder(topics=frozenset({"idle"})) for _ in range(100)]
    for writer in [on_a, on_b, on_all, *idle]:
        fanout.add(writer)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(fanout.run)
        await anyio.sleep(0.01)
        backend.publish_now([Draft(1, topic="a")])
        await _until(lambda: on_a.flushes >= 1)
        after_publish = [on_a.flushes, on_b.flushes, on_all.flushes, max(w.flushes for w in idle)]
        broadcast.nudge()
        await _until(lambda: min(w.flushes for w in idle) >= 1)
        after_nudge = [on_a.flushes, on_b.flushes, on_all.flushes, min(w.flushes for w in idle)]
        backend.replica.close()
    assert after_publish == [1, 0, 1, 0]
    assert after_nudge == [2, 1, 2, 1]


async def test_after_a_round_that_saw_several_publishes_the_next_one_waits() -> None:
    # Under a steady flow of publishes, back-to-back rounds would each carry what came in
    # one round; pausing for half the last round's time lets the next carry more per write.
    backend = MemoryBackend()
    broadcast = backend.replica.broadcast
    fanout = Fanout(broadcast)
    rounds: list[tuple[float, float]] = []  # (first flush, last flush) of each round

    class _Slow(_Recorder):
        def flush(self, current: Round) -> bool:
            time.sleep(0.00005)  # a write to a busy socket: rounds take a while
            now = time.monotonic()
            if self is writers[0]:
                rounds.append((now, now))
            else:
                rounds[-1] = (rounds[-1][0], now)
            if self is writers[100] and len(rounds) == 1:
                backend.publish_now([Draft(2)])  # answered between two slices
                backend.publish_now([Draft(3)])
            return super().flush(current)

    writers = [_Slow() for _ in range(200)]
    for writer in writers:
        fanout.add(writer)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(fanout.run)
        await anyio.sleep(0.01)
        backend.publish_now([Draft(1)])
        await anyio.sleep(0.2)
        backend.replica.close()
    (first_began, first_ended), (second_began, _) = rounds[:2]  # a last round at the close
    took = first_ended - first_began
    # Half the round, at most 10 ms; timers may wake a little early.
    assert second_began - first_ended >= min(took / 2, 0.01) / 2, (took, second_began - first_ended)


def test_a_stream_whose_writes_fail_leaves_the_fan_out_to_the_others(
    server: RunningServer,
) -> None:
    failing, healthy = _RawStream(server, "?topic=t"), _RawStream(server)
    try:
        failing.until_live()
        healthy.until_live()
        assert _eventually(lambda: len(server.service.fanout) == 2)
        _refuse_writes(server, b"topic=t")
        for n in range(3):  # the fan-out keeps writing to the healthy stream, round after round
            posted = httpx.post(
                f"{server.url}/items", json={"topic": "t", "data": {"n": n}}, headers=server.auth
            )
            assert posted.status_code == 201
            assert healthy.item_chunks(1) == [[n]]
        assert _eventually(lambda: len(server.service.streams) == 1)
    finally:
        failing.close()
        healthy.close()


def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _refuse_writes(server: RunningServer, query: bytes) -> None:
    """Half-close, on the server's side, the connection of the stream opened with ``query``:
    every write to it raises from then on, the fan-out's direct write included."""

    async def half_close() -> None:
        for protocol in server.server.server_state.connections:
            cycle: Any = getattr(protocol, "cycle", None)
            if cycle is not None and cycle.scope["query_string"] == query:
                protocol.transport.write_eof()

    loop = server.server.servers[0].get_loop()
    asyncio.run_coroutine_threadsafe(half_close(), loop).result(timeout=5)
