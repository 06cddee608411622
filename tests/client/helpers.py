"""Helpers for the client and command-line tests: bounded waits, servers started off-loop."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

import anyio

from tailcast import Event, LiveEvent, ResetEvent, StoredItem
from tests.support import RunningServer, run_server


async def wait_until(predicate: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail after ``within`` seconds."""
    with anyio.move_on_after(within):
        # Polling: the state is the server thread's, or the subscription's (no event to wait on).
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.01)
        return
    raise AssertionError(f"not true within {within} s: {what or predicate}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerSlot:
    """Start and stop servers from async tests, in a worker thread (both block)."""

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None

    async def start(self, **settings: Any) -> RunningServer:
        assert self._stack is None, "stop the running server first"
        stack = contextlib.ExitStack()
        running = await anyio.to_thread.run_sync(stack.enter_context, run_server(**settings))
        self._stack = stack
        return running

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await anyio.to_thread.run_sync(stack.close)


def items(events: list[Event]) -> list[StoredItem]:
    return [event for event in events if isinstance(event, StoredItem)]


def resets(events: list[Event]) -> list[ResetEvent]:
    return [event for event in events if isinstance(event, ResetEvent)]


def lives(events: list[Event]) -> list[LiveEvent]:
    return [event for event in events if isinstance(event, LiveEvent)]
