"""Small helpers for the HTTP end-to-end tests: publishing, reading SSE events, problems."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

PROBLEM_JSON = "application/problem+json"
STINGY_RCVBUF = 64 * 1024


def stingy_transport() -> httpx.HTTPTransport:
    """A transport whose sockets have a small fixed receive buffer (no autotuning), so a
    client that stops reading soon makes the server's writes to it block."""
    return httpx.HTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, STINGY_RCVBUF)]
    )


def sid(text: str) -> tuple[int, int]:
    """A stream id as a tuple that compares numerically ("9-0" < "10-0")."""
    ms, sep, seq = text.partition("-")
    if not (sep and ms.isdigit() and seq.isdigit()):
        raise AssertionError(f"not a stream id: {text!r}")
    return int(ms), int(seq)


def strictly_increasing(ids: list[str]) -> bool:
    keys = [sid(i) for i in ids]
    return all(a < b for a, b in itertools.pairwise(keys))


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE event with its data decoded from JSON."""

    event: str
    id: str
    data: Any
    retry: int | None

    @classmethod
    def of(cls, sse: ServerSentEvent) -> Event:
        return cls(sse.event, sse.id, json.loads(sse.data), sse.retry)


def _is_blank(sse: ServerSentEvent) -> bool:
    # httpx-sse dispatches an empty "message" for a comment-only block (a heartbeat) once
    # an id has been seen; the SSE standard does not, and the server never sends one.
    return sse.event == "message" and sse.data == ""


def events(source: Iterator[ServerSentEvent]) -> Iterator[Event]:
    """The stream's events, heartbeat artefacts left out."""
    for sse in source:
        if not _is_blank(sse):
            yield Event.of(sse)


async def aevents(source: AsyncIterator[ServerSentEvent]) -> AsyncIterator[Event]:
    async for sse in source:
        if not _is_blank(sse):
            yield Event.of(sse)


def take(stream: Iterator[Event], count: int) -> list[Event]:
    """The next ``count`` events; fails if the stream ends first."""
    taken: list[Event] = []
    for event in stream:
        taken.append(event)
        if len(taken) == count:
            return taken
    raise AssertionError(f"stream ended after {len(taken)} of {count} events: {taken}")


def until_live(stream: Iterator[Event]) -> tuple[list[Event], Event]:
    """Events before the `live` event, and the `live` event itself."""
    before: list[Event] = []
    for event in stream:
        if event.event == "live":
            return before, event
        before.append(event)
    raise AssertionError(f"stream ended before 'live': {before}")


def replay(
    client: httpx.Client,
    params: Mapping[str, Any] | None = None,
    *,
    last_event_id: str | None = None,
) -> tuple[list[Event], Event]:
    """The events a new stream sends before `live`, and the `live` event."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    with connect_sse(client, "GET", "/stream", params=params, headers=headers) as source:
        return until_live(events(source.iter_sse()))


def item_ids(stream_events: list[Event]) -> list[str]:
    return [event.id for event in stream_events if event.event == "item"]


def publish(client: httpx.Client, auth: Mapping[str, str], payload: Any) -> Any:
    """POST ``payload`` to /items, expecting 201; the decoded response."""
    response = client.post("/items", json=payload, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def publish_many(
    client: httpx.Client, auth: Mapping[str, str], count: int, **fields: Any
) -> list[dict[str, Any]]:
    """Publish ``count`` items in one batch, ``data`` numbered from 0; the stored items."""
    stored: list[dict[str, Any]] = publish(
        client, auth, [{"data": n, **fields} for n in range(count)]
    )
    return stored


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` and a non-empty detail."""
    assert response.status_code == status, response.text
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body.get("detail"), str)
    assert body["detail"].strip()
    return body
