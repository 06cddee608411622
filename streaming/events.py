"""SSE frames other than items: control events and the retry hint.

Frames are bytes with ``\\n`` line endings; items carry their own (see `Item.frame`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

from .ids import StreamId

ResetReason = Literal["expired", "evicted", "restarted", "unknown_id"]


def _id_or_none(value: StreamId | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Reset:
    """In-band notice that items the subscriber needed are gone; replay of what is left follows."""

    reason: ResetReason
    requested: StreamId | None
    oldest: StreamId | None

    @property
    def frame(self) -> bytes:
        payload = {
            "reason": self.reason,
            "requested": _id_or_none(self.requested),
            "oldest": _id_or_none(self.oldest),
        }
        return b"event: reset\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass(frozen=True, slots=True)
class Live:
    """The switch from replayed history to live items; ``cutoff`` is the last replayable id,
    ``replayed`` the number of items the replay held."""

    cutoff: StreamId | None
    replayed: int = 0

    @property
    def frame(self) -> bytes:
        payload = {"cutoff": _id_or_none(self.cutoff), "replayed": self.replayed}
        return b"event: live\ndata: " + orjson.dumps(payload) + b"\n\n"


def retry_field(milliseconds: int) -> bytes:
    """The reconnection-delay hint: one field line, to precede the first event's lines."""
    return b"retry: %d\n" % milliseconds
