"""Items: what producers publish, as stored, with their SSE frame encoded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .ids import StreamId

DEFAULT_TOPIC = "default"

Identity = tuple[str, str | StreamId]

_FRAME_HEAD = b"event: item\nid: "
_DATA_HEAD = b"\ndata: "


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
    """A stored item. ``frame`` is its complete SSE event, shared by every subscriber.

    ``key`` is the producer's key, or the item's id when it was published without one
    (``keyed`` False).
    """

    id: StreamId
    topic: str
    key: str
    data: Any
    created_at: int
    expires_at: int
    frame: bytes = field(repr=False)
    keyed: bool = True

    @classmethod
    def create(
        cls,
        id: StreamId,
        draft: Draft,
        *,
        created_at: int,
        expires_at: int,
    ) -> Item:
        """Build an item and encode its JSON and SSE frame, once."""
        text = str(id)
        key = text if draft.key is None else draft.key
        body = orjson.dumps(
            {
                "id": text,
                "key": key,
                "topic": draft.topic,
                "data": draft.data,
                "created_at": created_at,
                "expires_at": expires_at,
            }
        )
        frame = b"%s%s%s%s\n\n" % (_FRAME_HEAD, text.encode(), _DATA_HEAD, body)
        keyed = draft.key is not None
        return cls(id, draft.topic, key, draft.data, created_at, expires_at, frame, keyed)

    @property
    def identity(self) -> Identity:
        """What the cache keeps the latest item of: (topic, key) for a keyed item, (topic,
        id) for one published without a key. An id is a tuple and a key a string, so a key
        spelled like an id never replaces, nor is replaced by, an item without a key."""
        return (self.topic, self.key if self.keyed else self.id)

    @property
    def json(self) -> bytes:
        """The item as a JSON object (the ``data:`` line of its frame)."""
        start = self.frame.index(_DATA_HEAD, len(_FRAME_HEAD)) + len(_DATA_HEAD)
        return self.frame[start:-2]

    @property
    def size(self) -> int:
        """Bytes the item counts for in the cache's byte budget: its encoded frame."""
        return len(self.frame)
