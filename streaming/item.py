"""Items: what producers publish, as stored, with their JSON encoded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .ids import StreamId

DEFAULT_TOPIC = "default"

Identity = tuple[str, str | StreamId]

FRAME_ROOM = 64
"""Bytes an item counts for in byte budgets beyond its JSON: room for the field lines of
its SSE frame (``id``, ``event`` and ``data``: 25 bytes and an id of at most 39)."""


@dataclass(frozen=True, slots=True)
class Draft:
    """An item as a producer asks for it, before the log gives it an id.

    ``ttl_ms`` of None means the backend's default ttl; ``key`` of None means the item
    is keyed by its own id.
    """

    data: Any
    key: str | None = None
    topic: str = DEFAULT_TOPIC
    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Item:
    """A stored item. ``json`` is the item as a JSON object, encoded once: what ``GET
    /items`` and the answer to a publish send, and the data of its SSE frame.

    ``key`` is the producer's key, or the item's id when it was published without one
    (``keyed`` False).
    """

    id: StreamId
    topic: str
    key: str
    data: Any
    created_at: int
    expires_at: int
    json: bytes = field(repr=False)
    keyed: bool = True
    frame_head: bytes | None = field(default=None, repr=False)
    """The field lines of the item's SSE frame before its JSON, set once by the service's
    codec (`app.http.sse`) when a stream first needs them, and shared by every stream after."""

    @classmethod
    def create(
        cls,
        id: StreamId,
        draft: Draft,
        *,
        created_at: int,
        expires_at: int,
    ) -> Item:
        """Build an item and encode its JSON, once."""
        text = str(id)
        key = text if draft.key is None else draft.key
        encoded = orjson.dumps(
            {
                "id": text,
                "key": key,
                "topic": draft.topic,
                "data": draft.data,
                "created_at": created_at,
                "expires_at": expires_at,
            }
        )
        # Kept as a copy of its exact size: orjson's result keeps the whole buffer it was
        # encoded in (4 KiB for a small item).
        body = b"%b" % encoded
        keyed = draft.key is not None
        return cls(id, draft.topic, key, draft.data, created_at, expires_at, body, keyed)

    @property
    def identity(self) -> Identity:
        """What the cache keeps the latest item of: (topic, key) for a keyed item, (topic,
        id) for one published without a key. An id is a tuple and a key a string, so a key
        spelled like an id never replaces, nor is replaced by, an item without a key."""
        return (self.topic, self.key if self.keyed else self.id)

    @property
    def size(self) -> int:
        """Bytes the item counts for in byte budgets: its JSON and `FRAME_ROOM`. Fixed
        from the start, so that the books stay right once its frame head is set."""
        return len(self.json) + FRAME_ROOM

    def keep_frame_head(self, head: bytes) -> None:
        """Set `frame_head` (the service's codec does, once)."""
        object.__setattr__(self, "frame_head", head)
