"""With default settings on a Sentinel URL, a ``201`` survives failovers: two instances
publish and stream while ``SENTINEL FAILOVER`` promotes the replica and Sentinel demotes
the old master itself (no test shortcut), then the new master dies and Sentinel promotes
the old one back. A third instance started afterwards replays every acknowledged item.

After a promotion the old master still calls itself master until Sentinel reconfigures
it (10 to 18 s by default; 4 to 5 s with the Sentinels' periods shortened here), and
takes writes on connections opened before; when it becomes a replica it resyncs from the
new master and those writes are gone. A ``201`` for such a write is a lie unless a
replica confirmed it (``WAIT``). Instances that cached items the log then lost must drop
them, and tell the subscribers that received them with a ``reset``.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.redis.helpers import (
    Subscriber,
    eventually,
    logged_ids,
    running_instances,
    sentinel_topology,
    start_live,
    wait_replica_online,
)
from tests.redis.history import (
    Producer,
    Reading,
    Replay,
    fresh_instance_replay,
    read,
    replay,
    up_to,
)
from tests.redis_support import SENTINEL_MASTER, RedisProcess

HEARTBEAT = "1"
ACKS_BEFORE = 40
SENTINEL_TIMEOUT = 30.0


@dataclass
class Failover:
    acked: list[str]
    outcomes: Counter[str]
    demoted_after: float  # seconds the old master kept the role after the promotion
    log: list[str]  # what the master holds at the end (XRANGE)
    fresh: Replay  # an instance started at the end
    served: list[Replay]  # a new stream on each of the two instances, at the end
    subscribers: list[Subscriber]
    readings: list[Reading]


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Failover:
    return anyio.run(_failover, tmp_path_factory.mktemp("failover"))


async def _failover(directory: Path) -> Failover:
    with contextlib.ExitStack() as stack:
        topology = stack.enter_context(sentinel_topology(directory / "redis"))
        topology.quicken()
        old, new = topology.master, topology.replica
        instances = stack.enter_context(
            running_instances(topology.url, directory / "app", 2, "--heartbeat", HEARTBEAT)
        )
        urls = [instance.url for instance in instances]
        subscribers = [Subscriber([url, *(u for u in urls if u != url)]) for url in urls * 2]
        producers = [Producer(n, urls) for n in range(2)]
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client,
            anyio.create_task_group() as readers,
        ):
            await start_live(readers, client, subscribers)
            async with anyio.create_task_group() as producing:
                for producer in producers:
                    producing.start_soon(producer.run, client)
                await eventually(
                    lambda: sum(len(p.acked) for p in producers) >= ACKS_BEFORE, within=15
                )
                with topology.sentinels[0].client() as sentinel:
                    sentinel.sentinel_failover(SENTINEL_MASTER)
                await _until(lambda: topology.master_port() == new.port, "promotion")
                promoted = time.monotonic()
                await _until(lambda: _role(old) == "slave", "Sentinel to demote the old master")
                demoted_after = time.monotonic() - promoted
                await anyio.to_thread.run_sync(wait_replica_online, new)
                new.kill()
                await _until(lambda: topology.master_port() == old.port, "promotion back")
                await anyio.sleep(1.0)
                producing.cancel_scope.cancel()
            acked = [id for p in producers for id in p.acked]
            # The instances converge on the log once they reach the new master (bounded);
            # their subscribers have had their resets by then.
            served, log = await _converged(client, urls, old)
            readings: list[Reading] = []

            def settled() -> bool:
                readings[:] = [read(s.events, acked) for s in subscribers]
                return not any(r.missing for r in readings)

            with contextlib.suppress(AssertionError):  # the tests below say what is missing
                await eventually(settled, within=10)
            fresh, _ = await fresh_instance_replay(client, topology.url, directory / "fresh")
            readers.cancel_scope.cancel()
    outcomes = Counter(a.outcome for p in producers for a in p.attempts)
    return Failover(acked, outcomes, demoted_after, log, fresh, served, subscribers, readings)


async def _converged(
    client: httpx.AsyncClient, urls: list[str], master: RedisProcess, within: float = 10.0
) -> tuple[list[Replay], list[str]]:
    """A new stream's replay on each instance, and the log, once every replay is what the
    log holds up to its cutoff (or as they are after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while True:
        served = [await replay(client, url) for url in urls]
        with master.client() as redis:
            log = logged_ids(redis)  # after the replays: it holds every write they show
        if all(s.items == up_to(log, s.cutoff) for s in served) or time.monotonic() > deadline:
            return served, log
        await anyio.sleep(0.2)


def _role(server: RedisProcess) -> str:
    with contextlib.suppress(Exception), server.client() as client:
        role: Any = client.role()
        return str(role[0].decode() if isinstance(role[0], bytes) else role[0])
    return "unknown"


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SENTINEL_TIMEOUT
    while not await anyio.to_thread.run_sync(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {SENTINEL_TIMEOUT} s for {what}")
        await anyio.sleep(0.1)


def test_the_old_master_kept_its_role_for_a_while_after_the_promotion(
    failover: Failover,
) -> None:
    # The window this module is about: Sentinel, not the test, demoted the old master.
    assert failover.demoted_after > 2.0, failover.demoted_after


def test_publishes_answer_201_or_503(failover: Failover) -> None:
    assert set(failover.outcomes) <= {"201", "503"}, failover.outcomes
    assert len(failover.acked) >= ACKS_BEFORE


def test_an_instance_started_afterwards_replays_every_acknowledged_item(
    failover: Failover,
) -> None:
    replayed = set(failover.fresh.items)
    missing = [id for id in failover.acked if id not in replayed]
    assert not missing, (
        f"{len(missing)} of {len(failover.acked)} items answered 201 are gone from the log "
        f"(first {missing[:3]}); answers: {dict(failover.outcomes)}"
    )


def test_the_log_holds_every_acknowledged_item(failover: Failover) -> None:
    logged = set(failover.log)
    missing = [id for id in failover.acked if id not in logged]
    assert not missing, f"{len(missing)} of {len(failover.acked)} acknowledged items"


def test_the_instances_serve_what_the_log_holds(failover: Failover) -> None:
    for served in failover.served:
        logged = up_to(failover.log, served.cutoff)
        extra = sorted(set(served.items) - set(logged))
        assert served.items == logged, (
            f"{len(extra)} items the log lost are still served (first {extra[:3]}); "
            f"{len(set(logged) - set(served.items))} logged items are not"
        )


def test_subscribers_that_received_lost_items_got_a_reset_after_them(
    failover: Failover,
) -> None:
    logged = set(failover.log)
    for reading in failover.readings:
        lost = [(index, id) for index, id in reading.items if id not in logged]
        if lost:
            last_lost = lost[-1][0]
            later = [r for r in reading.resets if r.index > last_lost]
            assert later, (
                f"a subscriber received {len(lost)} items the log lost (first {lost[0][1]}) "
                f"and no reset after them; resets: {reading.resets}"
            )


def test_every_acknowledged_item_reaches_every_subscriber_once_in_order(
    failover: Failover,
) -> None:
    for reading in failover.readings:
        assert not reading.missing, f"{len(reading.missing)} missing, not covered by a reset"
        assert not reading.duplicates
        assert not reading.disorder
        assert not reading.misnamed
