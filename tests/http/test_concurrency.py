"""Many producers and late-joining subscribers at once: every subscriber gets every item,
in id order, none twice, whether it came from the replay or live."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from httpx_sse import connect_sse

from tests.http.helpers import Event, events, sid
from tests.support import RunningServer, run_server

PRODUCERS = 4
PER_PRODUCER = 500
TOTAL = PRODUCERS * PER_PRODUCER
SUBSCRIBERS = 20
DEADLINE = 20.0  # seconds for the whole exchange


class Progress:
    """How many items have been published so far; subscribers wait on it to join."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def add(self, count: int) -> None:
        with self._changed:
            self._count += count
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._count >= count, timeout):
                raise AssertionError(f"only {self._count} of {count} items published in time")


@dataclass
class Subscriber:
    joined_after: int
    events: list[Event] = field(default_factory=list)

    def items(self) -> list[str]:
        return [event.id for event in self.events if event.event == "item"]


def _run_all(targets: list[Callable[[], None]]) -> None:
    """Run each target in its own thread; re-raise the first failure; bounded by DEADLINE."""
    failures: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in threads), f"still running after {DEADLINE} s"
    if failures:
        raise failures[0]


def _producer(
    server: RunningServer, progress: Progress, number: int, rng: random.Random, ids: list[str]
) -> Callable[[], None]:
    sizes: list[int] = []
    while sum(sizes) < PER_PRODUCER:
        sizes.append(min(rng.randint(1, 5), PER_PRODUCER - sum(sizes)))

    def produce() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            sent = 0
            for size in sizes:
                payload = [{"data": {"producer": number, "n": sent + i}} for i in range(size)]
                body = payload[0] if size == 1 else payload
                response = client.post("/items", json=body, headers=server.auth)
                assert response.status_code == 201, response.text
                stored = response.json()
                ids.extend(item["id"] for item in (stored if size > 1 else [stored]))
                sent += size
                progress.add(size)

    return produce


def _subscriber(
    server: RunningServer, progress: Progress, subscriber: Subscriber
) -> Callable[[], None]:
    def subscribe() -> None:
        progress.wait_for(subscriber.joined_after, DEADLINE)
        with (
            httpx.Client(base_url=server.url, timeout=10) as client,
            connect_sse(client, "GET", "/stream") as source,
        ):
            count, live = 0, False
            for event in events(source.iter_sse()):
                subscriber.events.append(event)
                count += event.event == "item"
                live = live or event.event == "live"
                if count == TOTAL and live:  # one joining late sees `live` after them all
                    return

    return subscribe


def test_every_subscriber_gets_every_item_once_in_order_while_producers_publish() -> None:
    rng = random.Random(20240601)
    progress = Progress()
    produced: list[list[str]] = [[] for _ in range(PRODUCERS)]
    subscribers = [Subscriber(joined_after=rng.randrange(TOTAL)) for _ in range(SUBSCRIBERS)]

    with run_server() as server:  # default cache sizes: all 2,000 items stay cached
        _run_all(
            [_subscriber(server, progress, s) for s in subscribers]
            + [_producer(server, progress, p, rng, produced[p]) for p in range(PRODUCERS)]
        )
        everything = sorted((i for ids in produced for i in ids), key=sid)
        assert len(set(everything)) == TOTAL

        for number, subscriber in enumerate(subscribers):
            context = f"subscriber {number} (joined after {subscriber.joined_after} items)"
            kinds = [event.event for event in subscriber.events]
            assert "reset" not in kinds, context
            assert kinds.count("live") == 1, context
            received = subscriber.items()
            # Replay plus live is exactly the whole log: in id order, no gap, no duplicate.
            assert received == everything, context
            # Replayed items run up to the cutoff; live ones follow it.
            live_at = kinds.index("live")
            cutoff = subscriber.events[live_at].data["cutoff"]
            replayed = [e.id for e in subscriber.events[:live_at]]
            live = [e.id for e in subscriber.events[live_at + 1 :]]
            assert replayed == everything[: len(replayed)], context
            if cutoff is not None:
                assert replayed[-1] == cutoff, context
            assert all(sid(i) > sid(cutoff or "0-0") for i in live), context

        # The interesting case happened: subscribers that got both a replay and live items.
        assert any(
            s.events[0].event == "item" and s.events[-1].event == "item" for s in subscribers
        )

        # Each producer's items are in the log in the order it posted them.
        for number, ids in enumerate(produced):
            assert ids == sorted(ids, key=sid), f"producer {number}"
