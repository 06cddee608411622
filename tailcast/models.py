"""What the client hands its caller: stored items, the stream's notices, topics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tailcast.errors import ClientError


def id_key(item_id: str) -> tuple[int, int]:
    """A stream id ``"<ms>-<seq>"`` as a tuple that compares numerically (``9-0 < 10-0``)."""
    ms, sep, seq = item_id.partition("-")
    if not (sep and ms.isdigit() and seq.isdigit()):
        raise ValueError(f"{item_id!r} is not a stream id ('<ms>-<seq>')")
    return int(ms), int(seq)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as the server stored it.

    ``created_at`` and ``expires_at`` are Unix times in milliseconds. ``raw`` is the
    item's JSON text exactly as the server sent it, for an item received on its own (a
    stream event's ``data:`` line, or the answer to `TailcastClient.publish`), and empty
    for the items of a batch answer (see `to_json`); it takes no part in comparisons.
    """

    id: str
    key: str
    topic: str
    data: Any
    created_at: int
    expires_at: int
    raw: str = field(default="", repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any, raw: str = "") -> StoredItem:
        """Build from a decoded item object; raise `ClientError` if it is not one."""
        try:
            return cls(
                id=str(value["id"]),
                key=str(value["key"]),
                topic=str(value["topic"]),
                data=value["data"],
                created_at=int(value["created_at"]),
                expires_at=int(value["expires_at"]),
                raw=raw,
            )
        except (KeyError, TypeError, ValueError) as exc:
            text = raw or repr(value)
            raise ClientError(f"the server sent something not an item: {text:.200}") from exc

    def to_json(self) -> str:
        """The item as a JSON object: ``raw`` if set, else a compact encoding of the fields
        in the server's order (which is what the server sends, but for number formatting)."""
        if self.raw:
            return self.raw
        fields = {
            "id": self.id,
            "key": self.key,
            "topic": self.topic,
            "data": self.data,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)

    @property
    def sort_key(self) -> tuple[int, int]:
        """The id as ``(ms, seq)``, for numeric comparison."""
        return id_key(self.id)


@dataclass(frozen=True, slots=True)
class ResetEvent:
    """Items the subscriber needed are gone; what follows is what the server still has.

    ``reason`` is ``expired``, ``evicted``, ``restarted`` or ``unknown_id`` (see the
    README, "The reset event"); ``requested`` the id the stream resumed from and
    ``oldest`` the oldest id still cached on the stream's topics (None if none).
    """

    reason: str
    requested: str | None
    oldest: str | None


class ResetError(ClientError):
    """Raised by a subscription opened with ``raise_on_reset=True`` when the server sends
    ``reset``: items the subscriber needed are gone. ``event`` is the `ResetEvent`."""

    def __init__(self, event: ResetEvent) -> None:
        super().__init__(
            f"stream reset ({event.reason}): items after {event.requested} are gone; "
            f"oldest cached: {event.oldest}"
        )
        self.event = event


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """The replay is over: items after this are live. ``cutoff`` is the newest id the
    server had issued when the stream (or, after a reconnect, the resumed stream) began;
    ``replayed`` the number of items that stream replayed (None from a server that does
    not say)."""

    cutoff: str | None
    replayed: int | None = None


Event = StoredItem | ResetEvent | LiveEvent
"""What a `Subscription` yields."""


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """One topic as ``GET /topics`` lists it: its cached ``items`` and their ``bytes``, the
    id of its ``newest`` item (None if none), and the server's open streams that receive it
    (``subscribers``: by name, by pattern, or on every topic)."""

    topic: str
    items: int
    bytes: int
    newest: str | None
    subscribers: int

    @classmethod
    def from_json(cls, value: Any) -> TopicInfo:
        """Build from a decoded topic object; raise `ClientError` if it is not one."""
        try:
            newest = value["newest"]
            return cls(
                topic=str(value["topic"]),
                items=int(value["items"]),
                bytes=int(value["bytes"]),
                newest=None if newest is None else str(newest),
                subscribers=int(value["subscribers"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClientError(f"the server sent something not a topic: {value!r:.200}") from exc
