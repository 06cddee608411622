"""Fan-out of published items through one bounded log that every subscriber reads.

Publishing appends to the log and wakes waiting readers; it never awaits a subscriber.
Each subscriber keeps only a cursor (a sequence number into the log), so memory per
subscriber is constant, and a reader that has fallen behind the log's retained window
learns it was overrun (`read` returns None) instead of silently skipping items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter

import anyio

from .item import Item

_size_of = attrgetter("size")


class Broadcast:
    """A shared, bounded log of recent items with wake-ups for readers.

    It retains at least the last ``max_items`` items and about ``max_bytes`` of encoded items,
    trimming in steps so appends stay amortised O(1).
    """

    def __init__(self, *, max_items: int, max_bytes: int) -> None:
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._entries: list[Item] = []
        self._start = 0  # sequence number of self._entries[0]
        self._bytes = 0
        self._wakeup: anyio.Event | None = None
        self._closed = False
        self._nudges = 0
        self._on_close: list[Callable[[], object]] = []

    @property
    def end(self) -> int:
        """The sequence number the next published item will get."""
        return self._start + len(self._entries)

    @property
    def start(self) -> int:
        """The sequence number of the oldest retained item."""
        return self._start

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def nudges(self) -> int:
        """How many times `nudge` was called: a reader busy at the time can tell."""
        return self._nudges

    def publish(self, items: Sequence[Item]) -> None:
        """Append ``items`` and wake every waiting reader."""
        self._entries.extend(items)
        self._bytes += sum([item.size for item in items])
        self._trim()
        self._wake()

    def read(self, cursor: int) -> list[Item] | None:
        """Items from sequence number ``cursor`` on; None if they are no longer retained."""
        if cursor < self._start:
            return None
        return self._entries[cursor - self._start :]

    async def wait(self, cursor: int) -> None:
        """Return once an item at ``cursor`` or later exists, or the log is closed."""
        while cursor >= self.end and not self._closed:
            await self.wake_up(cursor)

    async def wake_up(self, cursor: int) -> None:
        """Return at the next wake-up: an item at ``cursor`` or later, a close, or a `nudge`.

        Returns at once if such an item already exists or the log is closed.
        """
        if cursor < self.end or self._closed:
            return
        if self._wakeup is None:
            self._wakeup = anyio.Event()
        await self._wakeup.wait()

    def restart(self) -> None:
        """Drop every retained item and skip a sequence number, so that every reader's next
        read reports it was overrun (the log it read from is no longer to be trusted)."""
        self._start = self.end + 1
        self._entries = []
        self._bytes = 0
        self._wake()

    def nudge(self) -> None:
        """Wake every waiting reader without publishing (one timer for all heartbeats)."""
        self._nudges += 1
        self._wake()

    def close(self) -> None:
        """End every reader's wait; readers then see `closed` and stop."""
        self._closed = True
        self._wake()
        for callback in self._on_close:
            callback()

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the log closes: for a task that waits on something else
        meanwhile, not on every publish."""
        self._on_close.append(callback)

    def _wake(self) -> None:
        # Events are created only while somebody waits, and replaced after each wake-up
        # (an anyio Event cannot be reset).
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def _trim(self) -> None:
        entries = self._entries
        if len(entries) <= 2 * self._max_items and self._bytes <= self._max_bytes:
            return  # within both bounds: nothing to drop (most appends)
        drop = len(entries) - self._max_items if len(entries) > 2 * self._max_items else 0
        freed = sum(map(_size_of, entries[:drop]))
        if self._bytes - freed > self._max_bytes:
            target = self._max_bytes * 3 // 4
            while drop < len(entries) - 1 and self._bytes - freed > target:
                freed += entries[drop].size
                drop += 1
        if drop:
            del entries[:drop]
            self._bytes -= freed
            self._start += drop
