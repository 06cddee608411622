"""The SSE codec (`app.http.sse`): every frame is what sse-starlette's `ServerSentEvent` writes,
item frames are encoded once and shared (that the core loads no SSE library:
tests/test_dependencies.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sse_starlette import ServerSentEvent

from app.http.sse import HEARTBEAT, control_frame, item_frame, joined, retry_field
from streaming import Draft, Item, Live, MemoryBackend, Reset, StreamId

_ids = st.builds(StreamId, st.integers(0, 10**19 - 1), st.integers(0, 10**19 - 1))
_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


def _item(id: StreamId, data: Any, key: str | None = None) -> Item:
    return Item.create(id, Draft(data, key=key), created_at=id.ms, expires_at=id.ms + 1000)


@given(id=_ids, data=_json, key=st.none() | st.text(min_size=1))
def test_an_item_frame_is_what_server_sent_event_writes(
    id: StreamId, data: Any, key: str | None
) -> None:
    item = _item(id, data, key)
    expected = ServerSentEvent(item.json.decode(), event="item", id=str(id), sep="\n").encode()
    assert item_frame(item) == expected
    assert joined([item]) == expected


def test_control_frames_are_what_server_sent_event_writes() -> None:
    reset = Reset("expired", StreamId(5, 1), StreamId(7, 0))
    assert control_frame(reset) == (
        b'event: reset\ndata: {"reason":"expired","requested":"5-1","oldest":"7-0"}\n\n'
    )
    assert control_frame(Live(None, 0)) == b'event: live\ndata: {"cutoff":null,"replayed":0}\n\n'
    assert ServerSentEvent(comment="heartbeat", sep="\n").encode() == HEARTBEAT


def test_the_retry_hint_opens_the_first_event_block() -> None:
    body = joined([Live(None, 0)], retry_field(1234))
    assert body == b'retry: 1234\nevent: live\ndata: {"cutoff":null,"replayed":0}\n\n'


def test_an_item_frame_is_encoded_once_for_every_stream() -> None:
    backend = MemoryBackend()
    (item,) = backend.publish_now([Draft(1)])
    first, second = backend.subscribe(), backend.subscribe()
    frames = {id(item_frame(e)) for s in (first, second) for e in s.poll() or [] if e is item}
    assert len(frames) == 1
    assert item.frame is not None
