"""Publishes that arrive while another is being written go to Redis together, in one
script call; each keeps its own consecutive ids and gets its own answer, and a publisher
that goes away neither loses nor fails the others' writes."""

from __future__ import annotations

import anyio
import pytest

from streaming import Draft, StreamId
from streaming.backends._grouped import Appended, GroupedWrites
from streaming.backends._scripts import payload_digest
from streaming.backends.redis import RedisBackend, connector
from tests.redis_support import RedisProcess

PUBLISHERS = 16


def _script_calls(redis_server: RedisProcess) -> int:
    stats = redis_server.client().info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_publishes_share_script_calls_and_keep_their_own_ids(
    redis_server: RedisProcess,
) -> None:
    async with RedisBackend(connector(redis_server.url)) as backend:
        before = _script_calls(redis_server)
        answers: dict[int, list[StreamId]] = {}

        async def publish(n: int) -> None:
            items = await backend.publish([Draft(n) for _ in range(n % 3 + 1)])
            answers[n] = [item.id for item in items]

        async with anyio.create_task_group() as group:
            for n in range(PUBLISHERS):
                group.start_soon(publish, n)
        calls = _script_calls(redis_server) - before
        logged = [item.id for item in backend.items()]
    assert calls < PUBLISHERS
    for n, ids in answers.items():
        start = logged.index(ids[0])
        assert logged[start : start + len(ids)] == ids, n  # consecutive
    assert sorted(id for ids in answers.values() for id in ids) == logged


class _Log:
    """An in-process stand-in for the log: appends when released, records each call."""

    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []
        self.release = anyio.Event()

    async def append(self, payloads: list[bytes]) -> Appended:
        self.calls.append(payloads)
        await self.release.wait()
        self.release = anyio.Event()
        first = sum(len(call) for call in self.calls[:-1])
        return None, [StreamId(1, first + i) for i in range(len(payloads))]


async def test_a_queued_publish_cancelled_is_never_written() -> None:
    log = _Log()
    writes = GroupedWrites(log.append)
    async with anyio.create_task_group() as group:
        group.start_soon(writes.write, [b"a"])
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as gone:
            gone.cancel()
            with pytest.raises(anyio.get_cancelled_exc_class()):
                await writes.write([b"b"])
        group.start_soon(writes.write, [b"c"])
        await anyio.wait_all_tasks_blocked()
        log.release.set()
        await anyio.wait_all_tasks_blocked()
        log.release.set()
    assert log.calls == [[b"a"], [b"c"]]


async def test_a_writer_cancelled_mid_write_still_answers_the_rest_of_its_group() -> None:
    log = _Log()
    writes = GroupedWrites(log.append)
    answers: list[Appended] = []
    gone = anyio.CancelScope()

    async def write(payload: bytes) -> None:
        answers.append(await writes.write([payload]))

    async def write_then_go_away(payload: bytes) -> None:
        with gone:
            await writes.write([payload])

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(writes.write, [b"a"])
            await anyio.wait_all_tasks_blocked()
            group.start_soon(write_then_go_away, b"b")
            await anyio.wait_all_tasks_blocked()
            group.start_soon(write, b"c")
            await anyio.wait_all_tasks_blocked()
            log.release.set()  # a was written alone; b now writes b and c
            await anyio.wait_all_tasks_blocked()
            assert log.calls == [[b"a"], [b"b", b"c"]]
            gone.cancel()
            await anyio.wait_all_tasks_blocked()
            log.release.set()
    assert answers == [((StreamId(1, 1), payload_digest(b"b")), [StreamId(1, 2)])]
