"""Pacing of stream starts: at most a few per turn of the event loop.

Starting a stream (parsing the request, subscribing, writing the first events) takes a
few hundred microseconds, and a server accepts every connection that is waiting at once:
a thousand clients reconnecting together would start a thousand streams in one turn and
hold up every publish meanwhile. `Turnstile` lets `per_turn` starts through per turn
and queues the rest in arrival order, so other requests are served between turns.
"""

from __future__ import annotations

from collections import deque

import anyio
import anyio.lowlevel


class Turnstile:
    """At most ``per_turn`` callers of `wait` pass per turn of the event loop; the others
    wait their turn in arrival order. Uncontended, `wait` returns without yielding."""

    def __init__(self, per_turn: int) -> None:
        self._per_turn = per_turn
        self._passed = 0  # callers let through since the turn began
        self._queue: deque[anyio.Event] = deque()
        self._turning = anyio.Event()
        self.arrivals = 0
        """Calls of `wait` so far."""

    @property
    def waiting(self) -> int:
        """Callers waiting for their turn."""
        return len(self._queue)

    async def wait(self) -> None:
        self.arrivals += 1
        self._turning.set()  # `run` begins the next turn
        if not self._queue and self._passed < self._per_turn:
            self._passed += 1
            return
        ticket = anyio.Event()
        self._queue.append(ticket)
        try:
            await ticket.wait()
        except BaseException:
            if not ticket.is_set():
                self._queue.remove(ticket)
            raise

    async def run(self) -> None:
        """For the service's lifetime: begin a turn whenever callers passed or wait."""
        while True:
            await self._turning.wait()
            self._turning = anyio.Event()
            while True:
                await anyio.lowlevel.checkpoint()  # the callers let through have run
                self._passed = 0
                while self._queue and self._passed < self._per_turn:
                    self._queue.popleft().set()
                    self._passed += 1
                if not self._passed:
                    break
