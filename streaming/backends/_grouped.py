"""Publishes that wait while another is being written go to Redis together, in one
script call (a group commit): one round trip, one script run and one write system call
for the group instead of one each. Every publish keeps its own consecutive ids."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from ..ids import StreamId
from ._scripts import payload_digest

Entry = tuple[StreamId, str]
"""An entry of the log: its id and its digest (`_scripts.entry_digest`)."""

Appended = tuple[Entry | None, list[StreamId]]
"""The entry the appended ones follow (None if the log held none), and their ids."""

Append = Callable[[list[bytes]], Awaitable[Appended]]

_GROUP_ITEMS = 4096  # at most, unless one publish has more: a script blocks Redis while it runs


@dataclass(slots=True, eq=False)
class _Pending:
    payloads: list[bytes]
    done: anyio.Event = field(default_factory=anyio.Event)
    lead: bool = False  # set (with `done`) when this publish is to write the next group
    appended: Appended | None = None
    error: BaseException | None = None

    def result(self) -> Appended:
        if self.error is not None:
            raise self.error
        assert self.appended is not None
        return self.appended


class GroupedWrites:
    """One group in flight at a time: the publish that finds none writes at once; those
    arriving meanwhile queue, and the first of them then writes them all. The write of a
    group is shielded from its writer's cancellation (a client that went away): the
    others' answers depend on it."""

    def __init__(self, append: Append) -> None:
        self._append = append
        self._queued: list[_Pending] = []
        self._busy = False

    async def write(self, payloads: list[bytes]) -> Appended:
        """Append ``payloads`` to the log, consecutively; raises what the group's write
        raised."""
        pending = _Pending(payloads)
        self._queued.append(pending)
        if self._busy:
            try:
                await pending.done.wait()
            except BaseException:
                if pending in self._queued:  # not written: it never will be
                    self._queued.remove(pending)
                    if pending.lead:
                        self._hand_over()
                raise
            if not pending.lead:
                return pending.result()
        self._busy = True
        group = self._take()
        try:
            with anyio.CancelScope(shield=True):
                await self._write(group)
        finally:
            self._hand_over()
        return pending.result()

    async def _write(self, group: list[_Pending]) -> None:
        try:
            follows, ids = await self._append([p for pending in group for p in pending.payloads])
        except Exception as exc:
            for pending in group:
                pending.error = exc
                pending.done.set()
            return
        start = 0
        for pending in group:
            end = start + len(pending.payloads)
            pending.appended = (follows, ids[start:end])
            follows = (ids[end - 1], payload_digest(pending.payloads[-1]))
            start = end
            pending.done.set()

    def _take(self) -> list[_Pending]:
        """The next group: the publishes queued first, up to `_GROUP_ITEMS` items (at least one)."""
        queued, total, count = self._queued, 0, 0
        for pending in queued:
            total += len(pending.payloads)
            if count and total > _GROUP_ITEMS:
                break
            count += 1
        group, self._queued = queued[:count], queued[count:]
        return group

    def _hand_over(self) -> None:
        if self._queued:
            first = self._queued[0]
            first.lead = True
            first.done.set()
        else:
            self._busy = False
