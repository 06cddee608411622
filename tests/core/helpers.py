"""Shared helpers for the core tests: a hand-driven clock, item builders, event summaries."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from streaming import Draft, Item, Live, MemoryBackend, Reset, StreamId
from streaming.subscription import Event, Subscription

T0 = 1_000_000
"""The fake clock's starting time (ms): the memory backend's floor is ``T0-0``."""

BackendFactory = Callable[..., MemoryBackend]
"""Builds a `MemoryBackend` on the fake clock from `LogConfig` keyword arguments."""


class FakeClock:
    """A millisecond clock moved by hand; with ``tick`` it also advances on every read."""

    def __init__(self, now: int = T0, *, tick: int = 0) -> None:
        self.now = now
        self.tick = tick

    def __call__(self) -> int:
        value = self.now
        self.now += self.tick
        return value

    def advance(self, ms: int) -> None:
        self.now += ms


def sid(text: str) -> StreamId:
    return StreamId.parse(text)


def make_item(
    id: str,
    *,
    key: str | None = None,
    topic: str = "default",
    data: object = "x",
    created_at: int = T0,
    ttl: int = 60_000,
) -> Item:
    """An item as a backend would build it, with an explicit id and expiry."""
    return Item.create(
        sid(id),
        Draft(data, key=key, topic=topic),
        created_at=created_at,
        expires_at=created_at + ttl,
    )


def describe(events: Iterable[Event]) -> list[str]:
    """Events as short strings: ``"reset:expired"``, ``"1000000-0"``, ``"live:1000000-3"``."""
    out: list[str] = []
    for event in events:
        if isinstance(event, Item):
            out.append(str(event.id))
        elif isinstance(event, Reset):
            out.append(f"reset:{event.reason}")
        else:
            out.append(f"live:{event.cutoff}")
    return out


def drain(subscription: Subscription, *, max_polls: int = 10_000) -> list[Event]:
    """Every event ready now: poll until nothing is ready (fails if the stream ended)."""
    events: list[Event] = []
    for _ in range(max_polls):
        batch = subscription.poll()
        assert batch is not None, "the stream ended while draining"
        if not batch:
            return events
        events.extend(batch)
    raise AssertionError("poll() kept returning events")


def item_ids(events: Sequence[Event]) -> list[str]:
    return [str(event.id) for event in events if isinstance(event, Item)]


def resets(events: Sequence[Event]) -> list[Reset]:
    return [event for event in events if isinstance(event, Reset)]


def lives(events: Sequence[Event]) -> list[Live]:
    return [event for event in events if isinstance(event, Live)]
