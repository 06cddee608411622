"""What producers and subscribers saw in a fault test, and the checks over it, in the
manner of Jepsen: record every operation with its outcome and timing, then check the
history against the promises (acknowledged items delivered exactly once in id order or
announced lost by a ``reset``; ids increasing in real time)."""

from __future__ import annotations

import bisect
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx

from tests.redis.helpers import Instance, SseEvent, publish_one, sid, spawn_instance

# -- producing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One ``POST /items``: when it was sent and answered, and how."""

    producer: int
    n: int
    url: str
    sent: float
    answered: float
    outcome: str  # the HTTP status, or the name of the transport error
    id: str | None = None  # the id of a 201


@dataclass
class Producer:
    """Posts items one at a time (one request in flight) until cancelled, to the instance
    at ``urls[0]`` and moving to the next one after a failed attempt. ``urls`` is shared
    with the test, which replaces the address of an instance it restarted."""

    number: int
    urls: list[str]
    pause: float = 0.01
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acked(self) -> list[str]:
        return [attempt.id for attempt in self.attempts if attempt.id is not None]

    async def run(self, client: httpx.AsyncClient) -> None:
        at = self.number
        for n in itertools.count():
            url = self.urls[at % len(self.urls)]
            sent = time.monotonic()
            try:
                response = await publish_one(client, url, {"p": self.number, "n": n}, seconds=10)
            except httpx.TransportError as exc:
                self.attempts.append(
                    Attempt(self.number, n, url, sent, time.monotonic(), _name(exc))
                )
                at += 1
            else:
                created = response.status_code == 201
                self.attempts.append(
                    Attempt(
                        self.number,
                        n,
                        url,
                        sent,
                        time.monotonic(),
                        str(response.status_code),
                        response.json()["id"] if created else None,
                    )
                )
                if not created:
                    at += 1
            await anyio.sleep(self.pause)


def _name(exc: Exception) -> str:
    return type(exc).__name__


def acked_between(producers: Iterable[Producer], start: float, end: float) -> list[str]:
    """Ids acknowledged (201) to requests sent in ``[start, end)``."""
    return [
        attempt.id
        for producer in producers
        for attempt in producer.attempts
        if attempt.id is not None and start <= attempt.sent < end
    ]


def outcomes_between(producers: Iterable[Producer], start: float, end: float) -> Counter[str]:
    return Counter(
        attempt.outcome
        for producer in producers
        for attempt in producer.attempts
        if start <= attempt.sent < end
    )


def real_time_disorder(attempts: Sequence[Attempt]) -> list[tuple[str, str]]:
    """Pairs (a, b) of acknowledged ids where a's answer came before b was sent, yet a's id
    is not below b's: ids must increase in real time, across producers and instances."""
    acks = sorted((a for a in attempts if a.id is not None), key=lambda a: a.answered)
    answered = [a.answered for a in acks]
    highest: list[tuple[tuple[int, int], str]] = []  # running maximum of ids, by answer time
    for attempt in acks:
        assert attempt.id is not None
        key = (sid(attempt.id), attempt.id)
        highest.append(max(highest[-1], key) if highest else key)
    found = []
    for attempt in acks:
        assert attempt.id is not None
        before = bisect.bisect_left(answered, attempt.sent)
        if before and highest[before - 1][0] >= sid(attempt.id):
            found.append((highest[before - 1][1], attempt.id))
    return found


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResetSeen:
    index: int  # in the subscriber's events
    reason: str
    requested: str | None
    oldest: str | None
    had: str | None  # the last item id the subscriber had when the reset came


@dataclass
class Reading:
    """One subscriber's events checked against the ids it should have received.

    A ``reset`` begins a new segment: what follows it may repeat earlier items (the replay
    after ``restarted`` is the whole cache), and the ids between ``requested`` and the first
    item past it are announced lost (covered). Within a segment ids strictly increase.
    """

    items: list[tuple[int, str]] = field(default_factory=list)  # (event index, id)
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    disorder: list[tuple[int, str]] = field(default_factory=list)
    resets: list[ResetSeen] = field(default_factory=list)
    covered: list[tuple[tuple[int, int], tuple[int, int] | None]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def misnamed(self) -> list[ResetSeen]:
        """Resets whose ``requested`` is not the last id the subscriber had."""
        return [reset for reset in self.resets if reset.requested != reset.had]

    def is_covered(self, id: str) -> bool:
        key = sid(id)
        return any(low < key and (high is None or key < high) for low, high in self.covered)

    def between(self, start: int, end: int) -> Reading:
        """The part of the reading whose events have indices in ``[start, end)``."""

        def inside(index: int) -> bool:
            return start <= index < end

        return Reading(
            [x for x in self.items if inside(x[0])],
            [x for x in self.duplicates if inside(x[0])],
            [x for x in self.disorder if inside(x[0])],
            [r for r in self.resets if inside(r.index)],
        )


def read(events: Sequence[SseEvent], expected: Iterable[str], since: str | None = None) -> Reading:
    """Check ``events`` (one subscriber's, across its connections) against ``expected``."""
    reading = Reading()
    had = since
    seen: set[str] = set()
    last: tuple[int, int] | None = None
    open_covers: list[int] = []  # indices in reading.covered still without an upper bound
    for index, event in enumerate(events):
        if event.event == "reset":
            data = json.loads(event.data)
            reading.resets.append(
                ResetSeen(index, data["reason"], data["requested"], data["oldest"], had)
            )
            low = sid(data["requested"]) if data["requested"] else (0, 0)
            reading.covered.append((low, None))
            open_covers.append(len(reading.covered) - 1)
            seen, last = set(), None
        elif event.event == "item":
            assert event.id is not None
            key = sid(event.id)
            if event.id in seen:
                reading.duplicates.append((index, event.id))
            elif last is not None and key <= last:
                reading.disorder.append((index, event.id))
            seen.add(event.id)
            last = key if last is None else max(last, key)
            reading.items.append((index, event.id))
            for cover in list(open_covers):
                low, _ = reading.covered[cover]
                if key > low:
                    reading.covered[cover] = (low, key)
                    open_covers.remove(cover)
            had = event.id
    delivered = {id for _, id in reading.items}
    reading.missing = [id for id in expected if id not in delivered and not reading.is_covered(id)]
    return reading


# -- a fresh instance's replay ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replay:
    """What a stream opened without ``Last-Event-ID`` replayed before ``live``."""

    items: list[str]
    cutoff: str | None
    events: list[SseEvent]


async def replay(client: httpx.AsyncClient, url: str, within: float = 10.0) -> Replay:
    """Open ``url``'s stream, read its replay up to ``live``, and close it."""
    events: list[SseEvent] = []
    kind, id, data = "message", None, []
    with anyio.fail_after(within):
        async with client.stream("GET", url + "/stream", timeout=within) as response:
            assert response.status_code == 200, response.status_code
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    continue
                if line:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        kind = value
                    elif name == "id":
                        id = value
                    elif name == "data":
                        data.append(value)
                    continue
                if not data:
                    continue
                event = SseEvent(kind, id, "\n".join(data))
                events.append(event)
                kind, id, data = "message", None, []
                if event.event == "live":
                    cutoff = json.loads(event.data)["cutoff"]
                    items = [e.id for e in events if e.event == "item" and e.id is not None]
                    return Replay(items, cutoff, events)
    raise AssertionError(f"{url}: the stream ended before 'live'")


async def fresh_instance_replay(
    client: httpx.AsyncClient, backend: str, directory: Path, *args: str
) -> tuple[Replay, Instance]:
    """Start an instance on ``backend``, take its replay, stop it; the replay and the
    (stopped) instance, whose log the caller may want."""
    instance = spawn_instance(backend, directory, *args)
    try:
        await anyio.to_thread.run_sync(instance.wait_ready)
        return await replay(client, instance.url), instance
    finally:
        await anyio.to_thread.run_sync(instance.stop)


def up_to(ids: Iterable[str], cutoff: str | None) -> list[str]:
    """The ids at or below ``cutoff`` (none if it is None)."""
    if cutoff is None:
        return []
    limit = sid(cutoff)
    return [id for id in ids if sid(id) <= limit]
