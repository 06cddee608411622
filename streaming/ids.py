"""Stream ids: ``"<ms>-<seq>"`` as in Redis Streams, compared numerically."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from itertools import repeat
from typing import NamedTuple

from .errors import InvalidId

_U64_MAX = 2**64 - 1


class StreamId(NamedTuple):
    """A position in a log: milliseconds and a sequence number within that millisecond.

    A tuple, so ids compare numerically (``(9, 0) < (10, 0)``) at C speed; never compare
    the string forms.
    """

    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    @classmethod
    def trusted(cls, raw: bytes | str) -> StreamId:
        """An id the log itself made (Redis's ``<ms>-<seq>``): parsed without `parse`'s
        checks, which cost more than the rest of reading an entry."""
        ms, _, seq = (raw if isinstance(raw, bytes) else raw.encode()).partition(b"-")
        return cls(int(ms), int(seq))

    @classmethod
    def parse(cls, text: str) -> StreamId:
        """Parse ``"<ms>-<seq>"``; raise `InvalidId` for anything else."""
        ms_text, sep, seq_text = text.partition("-")
        if not sep or not _is_u64(ms_text) or not _is_u64(seq_text):
            raise InvalidId(
                f"{text!r} is not a stream id: expected '<ms>-<seq>', two unsigned integers"
            )
        return cls(int(ms_text), int(seq_text))


def consecutive(first: StreamId, count: int) -> list[StreamId]:
    """``first`` and the ids after it in its millisecond: ``count`` ids in all."""
    ms, seq = first
    return list(map(_made, zip(repeat(ms), range(seq, seq + count))))


_made = partial(tuple.__new__, StreamId)
"""A `StreamId` from an ``(ms, seq)`` pair, without the Python ``__new__`` of a named tuple."""


def _is_u64(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 20 and int(text) <= _U64_MAX


class IdGenerator:
    """Issues strictly increasing ids from a millisecond clock, even when the clock steps back.

    Every id is at least ``floor``, so ids issued after a restart stay above those issued
    before it as long as the wall clock moved forward in between.
    """

    def __init__(self, clock: Callable[[], int], floor: StreamId) -> None:
        self._clock = clock
        self._ms = floor.ms
        self._seq = floor.seq - 1

    def next(self) -> StreamId:
        """Return the next id: the clock's millisecond, or the last one with seq + 1."""
        now = self._clock()
        if now > self._ms:
            self._ms, self._seq = now, 0
        else:
            self._seq += 1
        return StreamId(self._ms, self._seq)

    def take(self, count: int) -> list[StreamId]:
        """The next ``count`` ids, as many calls of `next` would give them within one
        millisecond: a batch's ids, read from the clock once."""
        first = self.next()
        self._seq += count - 1
        return consecutive(first, count)
