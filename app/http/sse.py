"""The SSE codec: every frame the service writes, in sse-starlette's `ServerSentEvent` form.

Control frames (``reset``, ``live``), the heartbeat comment and the retry hint are encoded
by `ServerSentEvent` itself. Items are the hot path: an item's frame is its field lines
(``id``, ``event``, ``data:``), its JSON (encoded once by the core, `Item.json`) and the
blank line, in the layout `ServerSentEvent` gives them (taken from it below, and checked
against it by tests/test_sse.py). The frame is encoded once, when the item is published
here or the first time any stream needs it, and kept on the item (`Item.frame`), so
replays and the fan-out share it and join one piece per item.

Frames use ``\\n`` line endings: `EventSourceResponse` writes bytes as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sse_starlette import ServerSentEvent

from streaming import Item, Live, Reset, StreamId
from streaming.subscription import Event

SEP = "\n"
"""The line separator of every frame."""


def _item_layout() -> tuple[bytes, bytes, bytes]:
    """What `ServerSentEvent` writes before an item's id, between its id and its data, and
    after its data: found by encoding an item event with placeholders."""
    id_mark, data_mark = "\0id\0", "\0data\0"
    encoded = ServerSentEvent(data_mark, event="item", id=id_mark, sep=SEP).encode().decode()
    before_id, _, rest = encoded.partition(id_mark)
    between, _, after = rest.partition(data_mark)
    if not after or data_mark in before_id:  # pragma: no cover - another sse-starlette
        raise RuntimeError(f"unexpected ServerSentEvent layout: {encoded!r}")
    return before_id.encode(), between.encode(), after.encode()


_HEAD_START, _HEAD_END, _FRAME_END = _item_layout()
"""``id: `` <id> ``\nevent: item\ndata: `` <json> ``\n\n`` (sse-starlette 3.7)."""
_HEAD = b"%s%%d-%%d%s" % (_HEAD_START.replace(b"%", b"%%"), _HEAD_END.replace(b"%", b"%%"))
"""The field lines before an item's JSON, to be formatted with its id (`StreamId` is the
tuple ``(ms, seq)``, written ``<ms>-<seq>``)."""

HEARTBEAT = ServerSentEvent(comment="heartbeat", sep=SEP).encode()
"""A comment frame that keeps an idle connection open through proxies."""


def heartbeat() -> ServerSentEvent:
    """The heartbeat, as `EventSourceResponse`'s ``ping_message_factory`` wants it."""
    return ServerSentEvent(comment="heartbeat", sep=SEP)


def retry_field(milliseconds: int) -> bytes:
    """The reconnection-delay hint as one field line, to open the first event's block:
    a block holding only ``retry:`` is not an event, yet some clients dispatch it as an
    empty message."""
    block = ServerSentEvent(retry=milliseconds, sep=SEP).encode()
    return block[: -len(SEP)]


def _id_or_none(value: StreamId | None) -> str | None:
    return None if value is None else str(value)


def control_frame(event: Reset | Live) -> bytes:
    """A ``reset`` or ``live`` event's frame (made per stream: each has its own)."""
    if isinstance(event, Reset):
        payload: dict[str, object] = {
            "reason": event.reason,
            "requested": _id_or_none(event.requested),
            "oldest": _id_or_none(event.oldest),
        }
        name = "reset"
    else:
        payload = {"cutoff": _id_or_none(event.cutoff), "replayed": event.replayed}
        name = "live"
    return ServerSentEvent(orjson.dumps(payload).decode(), event=name, sep=SEP).encode()


def item_frame(item: Item) -> bytes:
    """The item's whole frame, encoded the first time it is needed and kept on the item."""
    frame = item.frame
    if frame is None:
        frame = item.frame = _HEAD % item.id + item.json + _FRAME_END
    return frame


def frame_parts(batch: Sequence[Event], head: bytes = b"") -> list[bytes]:
    """The batch's frames (after ``head``, the retry hint) as the pieces of one body, for
    a writer to join with whatever it puts around them."""
    parts = [head] if head else []
    for event in batch:
        if isinstance(event, Item):
            parts.append(event.frame or item_frame(event))
        else:
            parts.append(control_frame(event))
    return parts


def joined(batch: Sequence[Event], head: bytes = b"") -> bytes:
    """The batch's frames (after ``head``, the retry hint) as one body."""
    return b"".join(frame_parts(batch, head))
