"""The broadcast log: publishing never waits, readers keep a cursor and learn when overrun."""

from __future__ import annotations

import inspect

import anyio

from streaming import Broadcast, Item
from tests.core.helpers import make_item


def items(start: int, count: int, *, data: str = "x") -> list[Item]:
    return [make_item(f"1000000-{seq}", data=data) for seq in range(start, start + count)]


def test_publish_is_a_plain_call_that_never_awaits() -> None:
    log = Broadcast(max_items=2, max_bytes=10**6)
    assert not inspect.iscoroutinefunction(log.publish)
    for start in range(0, 100, 5):  # nobody reads; the log stays bounded
        log.publish(items(start, 5))
    assert log.end == 100
    assert log.read(log.end - 2) is not None


def test_end_is_the_sequence_number_of_the_next_item() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    assert log.end == 0
    log.publish(items(0, 3))
    assert log.end == 3


def test_read_returns_the_items_from_the_cursor_on() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    published = items(0, 3)
    log.publish(published)
    assert log.read(0) == published
    assert log.read(1) == published[1:]


def test_read_at_the_end_returns_no_items() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    log.publish(items(0, 3))
    assert log.read(log.end) == []


def test_read_returns_the_published_objects_themselves() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    published = items(0, 2)
    log.publish(published)
    read = log.read(0)
    assert read is not None
    assert all(a is b for a, b in zip(read, published, strict=True))


def test_read_returns_none_once_the_cursor_is_overrun() -> None:
    log = Broadcast(max_items=2, max_bytes=10**6)
    log.publish(items(0, 5))
    assert log.read(0) is None


def test_the_log_keeps_at_least_the_last_max_items() -> None:
    log = Broadcast(max_items=3, max_bytes=10**6)
    for seq in range(50):
        log.publish(items(seq, 1))
        assert log.read(max(0, log.end - 3)) is not None


def test_the_log_keeps_at_most_twice_max_items() -> None:
    log = Broadcast(max_items=3, max_bytes=10**6)
    for seq in range(50):
        log.publish(items(seq, 1))
        if log.end > 6:
            assert log.read(log.end - 7) is None


def test_the_byte_bound_trims_old_items() -> None:
    size = items(0, 1, data="x" * 100)[0].size
    log = Broadcast(max_items=100, max_bytes=4 * size)
    log.publish(items(0, 5, data="x" * 100))
    assert log.read(0) is None
    assert log.read(log.end - 1) is not None


def test_the_byte_bound_keeps_the_newest_item_even_when_it_is_too_big() -> None:
    log = Broadcast(max_items=100, max_bytes=10)
    published = items(0, 3)
    log.publish(published)
    assert log.read(log.end - 1) == published[-1:]
    assert log.read(log.end - 2) is None


def test_close_marks_the_log_closed() -> None:
    log = Broadcast(max_items=2, max_bytes=10**6)
    assert not log.closed
    log.close()
    assert log.closed


async def test_wait_returns_at_once_when_an_item_is_there() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    log.publish(items(0, 1))
    with anyio.fail_after(1):
        await log.wait(0)


async def test_wait_wakes_when_an_item_is_published() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    woken: list[int] = []

    async def reader() -> None:
        await log.wait(0)
        woken.append(log.end)

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.wait_all_tasks_blocked()
            assert woken == []
            log.publish(items(0, 1))
    assert woken == [1]


async def test_wait_wakes_every_waiting_reader() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    woken: list[int] = []

    async def reader(n: int) -> None:
        await log.wait(0)
        woken.append(n)

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(reader, n)
            await anyio.wait_all_tasks_blocked()
            log.publish(items(0, 1))
    assert sorted(woken) == [0, 1, 2]


async def test_wait_keeps_waiting_until_an_item_reaches_its_cursor() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    done: list[bool] = []

    async def reader() -> None:
        await log.wait(1)
        done.append(True)

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.wait_all_tasks_blocked()
            log.publish(items(0, 1))  # cursor 0: not yet what the reader waits for
            await anyio.wait_all_tasks_blocked()
            assert done == []
            log.publish(items(1, 1))
    assert done == [True]


async def test_wait_wakes_when_the_log_is_closed() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(log.wait, 0)
            await anyio.wait_all_tasks_blocked()
            log.close()


async def test_wait_on_a_closed_log_returns_at_once() -> None:
    log = Broadcast(max_items=10, max_bytes=10**6)
    log.close()
    with anyio.fail_after(1):
        await log.wait(0)
