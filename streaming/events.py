"""What a subscription sends besides items: in-band control events, as plain values.

How they are written on the wire is the service's business (`app.http.sse`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .ids import StreamId

ResetReason = Literal["expired", "evicted", "restarted", "unknown_id"]


@dataclass(frozen=True, slots=True)
class Reset:
    """In-band notice that items the subscriber needed are gone; replay of what is left follows."""

    reason: ResetReason
    requested: StreamId | None
    oldest: StreamId | None


@dataclass(frozen=True, slots=True)
class Live:
    """The switch from replayed history to live items; ``cutoff`` is the last replayable id,
    ``replayed`` the number of items the replay held."""

    cutoff: StreamId | None
    replayed: int = 0
