"""Items: what producers publish, as stored, with their JSON encoded once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .ids import StreamId

DEFAULT_TOPIC = "default"

Identity = tuple[str, str | StreamId]

FRAME_ROOM = 64
"""Bytes an item's SSE frame holds beyond its JSON: room for its field lines (``id``,
``event`` and ``data``: 25 bytes and an id of at most 39) and the blank line."""


# Drafts and items are immutable to type checkers (`Final` fields), not frozen at run
# time: a frozen dataclass sets each field through `object.__setattr__`, which made
# building one cost five times as much as a plain one (a batch builds thousands).


@dataclass(slots=True)
class Draft:
    """An item as a producer asks for it, before the log gives it an id.

    ``ttl_ms`` of None means the backend's default ttl; ``key`` of None means the item
    is keyed by its own id.
    """

    data: Final[Any]
    key: Final[str | None] = None
    topic: Final[str] = DEFAULT_TOPIC
    ttl_ms: Final[int | None] = None


@dataclass(slots=True, eq=False)
class Item:
    """A stored item. ``json`` is the item as a JSON object, encoded once: what ``GET
    /items`` and the answer to a publish send, and the data of its SSE frame.

    ``key`` is the producer's key, or the item's id when it was published without one
    (``keyed`` False). ``size`` is what the item counts for in byte budgets: its JSON,
    and its frame (the JSON again and `FRAME_ROOM`); fixed from the start, so that the
    books stay right once the frame is set.
    """

    id: Final[StreamId]
    topic: Final[str]
    key: Final[str]
    data: Final[Any]
    created_at: Final[int]
    expires_at: Final[int]
    json: Final[bytes] = field(repr=False)
    keyed: Final[bool]
    size: Final[int] = field(repr=False)
    frame: bytes | None = field(default=None, repr=False)
    """The item's whole SSE frame, set once by the service's codec (`app.http.sse`) and
    shared by every stream after: one piece per item to join into a write."""

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
        return cls.create_all([id], [draft], [expires_at - created_at], created_at)[0]

    @classmethod
    def create_all(
        cls,
        ids: Sequence[StreamId],
        drafts: Sequence[Draft],
        ttls_ms: Sequence[int],
        created_at: int | None = None,
    ) -> list[Item]:
        """Build the items ``drafts`` ask for, with ``ids`` and ttls, and encode each one's
        JSON, once. Created at ``created_at``, or at its id's millisecond when None (as
        every instance of a shared log builds it, whoever published it)."""
        items: list[Item] = []
        append, dumps = items.append, orjson.dumps
        head_ms, head = -1, ""
        for id, draft, ttl_ms in zip(ids, drafts, ttls_ms, strict=True):
            ms, seq = id
            if ms != head_ms:  # a batch's ids share their millisecond: its text is made once
                head_ms, head = ms, f"{ms}-"
            text = head + str(seq)
            created = ms if created_at is None else created_at
            expires = created + ttl_ms
            key = text if draft.key is None else draft.key
            encoded = dumps(
                {
                    "id": text,
                    "key": key,
                    "topic": draft.topic,
                    "data": draft.data,
                    "created_at": created,
                    "expires_at": expires,
                }
            )
            # Kept as a copy of its exact size: orjson's result keeps the whole buffer it
            # was encoded in (4 KiB for a small item).
            body = b"%b" % encoded
            size = 2 * len(body) + FRAME_ROOM
            keyed = draft.key is not None
            append(cls(id, draft.topic, key, draft.data, created, expires, body, keyed, size))
        return items

    @property
    def identity(self) -> Identity:
        """What the cache keeps the latest item of: (topic, key) for a keyed item, (topic,
        id) for one published without a key. An id is a tuple and a key a string, so a key
        spelled like an id never replaces, nor is replaced by, an item without a key."""
        return (self.topic, self.key if self.keyed else self.id)
