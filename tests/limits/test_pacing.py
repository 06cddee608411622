"""Stream starts are paced per turn of the event loop, and full garbage collections wait
while streams arrive in numbers."""

from __future__ import annotations

import gc
import logging

import anyio
import anyio.lowlevel
import pytest

from app.http.pacing import Turnstile
from app.server.garbage import defer_full_collections_during_storms


async def test_a_burst_of_starts_passes_a_few_per_turn_in_arrival_order() -> None:
    turnstile = Turnstile(per_turn=16)
    turn = 0
    passed: list[tuple[int, int]] = []  # (turn, caller)

    async def ticker() -> None:
        nonlocal turn
        while True:
            await anyio.lowlevel.checkpoint()
            turn += 1

    async def caller(number: int) -> None:
        await turnstile.wait()
        passed.append((turn, number))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(turnstile.run)
        tasks.start_soon(ticker)
        async with anyio.create_task_group() as callers:
            for number in range(100):
                callers.start_soon(caller, number)
        tasks.cancel_scope.cancel()
    per_turn: dict[int, int] = {}
    for at, _ in passed:
        per_turn[at] = per_turn.get(at, 0) + 1
    assert [number for _, number in passed] == list(range(100))
    assert max(per_turn.values()) <= 16
    assert len(per_turn) >= 7


async def test_an_uncontended_start_does_not_wait() -> None:
    turnstile = Turnstile(per_turn=16)
    with anyio.fail_after(1):
        await turnstile.wait()  # no `run` task: passing must not need one
    assert turnstile.arrivals == 1


async def test_full_collections_wait_while_streams_queue_and_resume_once_calm(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tailcast")
    thresholds = gc.get_threshold()
    turnstile = Turnstile(per_turn=1)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(
            lambda: defer_full_collections_during_storms(turnstile, settle=0.2, period=0.05)
        )
        async with anyio.create_task_group() as starts:
            for _ in range(50):  # all at once: they queue (turnstile.run is not running)
                starts.start_soon(turnstile.wait)
            await anyio.sleep(0.2)
            during = gc.get_threshold()
            tasks.start_soon(turnstile.run)  # let them through; `starts` ends when all did
        await anyio.sleep(0.5)
        after = gc.get_threshold()
        tasks.cancel_scope.cancel()
    _assert_put_off_then_resumed(thresholds, during, after, caplog.text)


async def test_full_collections_wait_while_items_are_published_fast_and_resume_once_calm(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tailcast")
    thresholds = gc.get_threshold()
    applied = 0
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(
            lambda: defer_full_collections_during_storms(
                Turnstile(per_turn=1),
                lambda: applied,
                publish_rate=1_000,
                settle=0.2,
                period=0.05,
            )
        )
        for _ in range(20):  # 100 items every 10 ms: 10,000 a second
            applied += 100
            await anyio.sleep(0.01)
        during = gc.get_threshold()
        await anyio.sleep(0.5)
        after = gc.get_threshold()
        tasks.cancel_scope.cancel()
    _assert_put_off_then_resumed(thresholds, during, after, caplog.text)
    assert "many items published: full garbage collections put off" in caplog.text


def _assert_put_off_then_resumed(
    thresholds: tuple[int, int, int],
    during: tuple[int, int, int],
    after: tuple[int, int, int],
    logged: str,
) -> None:
    """Full collections were put off (the oldest generation's threshold raised, the others
    kept), then resumed with the thresholds as they were, and the log says both."""
    assert during[:2] == thresholds[:2]
    assert during[2] > 1_000_000
    assert after == thresholds
    assert "full garbage collections put off" in logged
    assert "full garbage collections resume" in logged
