"""Two Sentinel failovers while instances publish and stream with default settings (through
Sentinel a 201 means a replica has the write): first a manual ``SENTINEL FAILOVER``, then
the new master dies (SIGKILL) and Sentinel promotes the old one back. Publishes in the failover
windows may fail with 503; every acknowledged item reaches every subscriber exactly once,
in increasing id order."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

from tests.redis.helpers import (
    Subscriber,
    eventually,
    fast_sync,
    publish_one,
    running_instances,
    sentinel_topology,
    sid,
    start_live,
    strictly_increasing,
    wait_replica_online,
)
from tests.redis_support import SENTINEL_MASTER, RedisProcess

ACKS_PER_PHASE = 20
FAILOVER_TIMEOUT = 30.0


@dataclass
class Publishing:
    """What the publisher saw: every answer's status (or error), and the acknowledged ids."""

    statuses: Counter[str] = field(default_factory=Counter)
    acked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Failovers:
    publishing: Publishing
    acked_per_phase: list[int]  # acknowledged items before, between and after the failovers
    subscribers: list[Subscriber]
    logs: list[str]


@pytest.fixture(scope="module")
def failovers(tmp_path_factory: pytest.TempPathFactory) -> Failovers:
    """Run the two failovers once for the module's tests."""
    return anyio.run(_failovers, tmp_path_factory.mktemp("sentinel"))


async def _publish_until_cancelled(
    client: httpx.AsyncClient, urls: list[str], publishing: Publishing
) -> None:
    n = 0
    while True:
        url = urls[n % len(urls)]
        try:
            response = await publish_one(client, url, n, seconds=15)
        except httpx.TransportError as exc:
            publishing.statuses[type(exc).__name__] += 1
        else:
            publishing.statuses[str(response.status_code)] += 1
            if response.status_code == 201:
                publishing.acked.append(response.json()["id"])
            elif response.status_code != 503:
                publishing.problems.append(response.text)
        n += 1
        await anyio.sleep(0.01)


async def _acks(publishing: Publishing, count: int) -> None:
    """Wait until ``count`` more items are acknowledged."""
    target = len(publishing.acked) + count
    await eventually(
        lambda: len(publishing.acked) >= target,
        within=FAILOVER_TIMEOUT,
        describe=lambda: f"publishing did not recover: {dict(publishing.statuses)}",
    )


async def _failovers(directory: Path) -> Failovers:
    with contextlib.ExitStack() as stack:
        topology = stack.enter_context(sentinel_topology(directory / "redis"))
        old, new = topology.master, topology.replica
        instances = stack.enter_context(running_instances(topology.url, directory / "app", 2))
        urls = [instance.url for instance in instances]
        subscribers = [Subscriber([url, *(u for u in urls if u != url)]) for url in urls]
        publishing = Publishing()
        phases: list[int] = []
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client,
            anyio.create_task_group() as readers,
        ):
            await start_live(readers, client, subscribers)
            async with anyio.create_task_group() as publisher:
                publisher.start_soon(_publish_until_cancelled, client, urls, publishing)
                await _acks(publishing, ACKS_PER_PHASE)
                phases.append(len(publishing.acked))

                # 1. A manual failover: the replica becomes master; the old master, demoted
                # by Sentinel, is made a replica of the new one (as Sentinel does after its
                # 10 s INFO period; done here at once to keep the test short).
                with topology.sentinels[0].client() as sentinel:
                    sentinel.sentinel_failover(SENTINEL_MASTER)
                await _wait_master(topology.master_port, new.port)
                with old.client() as demoted:
                    demoted.replicaof("127.0.0.1", new.port)
                await anyio.to_thread.run_sync(wait_replica_online, new)
                await _acks(publishing, ACKS_PER_PHASE)
                phases.append(len(publishing.acked))

                # 2. The new master dies; Sentinel promotes the old one. The dead one comes
                # back (empty) as a replica, so that writes can be confirmed again.
                new.kill()
                await _wait_master(topology.master_port, old.port)
                back = RedisProcess(directory / "back", port=new.port, replica_of=old.port)
                stack.callback(back.kill)
                await anyio.to_thread.run_sync(back.start)
                fast_sync(old)
                await anyio.to_thread.run_sync(wait_replica_online, old)
                await _acks(publishing, ACKS_PER_PHASE)
                phases.append(len(publishing.acked))
                publisher.cancel_scope.cancel()
            acked = set(publishing.acked)
            await eventually(
                lambda: all(acked <= set(s.items) for s in subscribers),
                within=15,
                describe=lambda: f"missing {[sorted(acked - set(s.items)) for s in subscribers]}",
            )
            await anyio.sleep(0.3)  # room for a duplicate to show up
            readers.cancel_scope.cancel()
        return Failovers(publishing, phases, subscribers, [i.log for i in instances])


async def _wait_master(master_port: Callable[[], int | None], port: int) -> None:
    """Until the Sentinels name the master on ``port`` (bounded)."""
    deadline = time.monotonic() + FAILOVER_TIMEOUT
    while await anyio.to_thread.run_sync(master_port) != port:
        if time.monotonic() > deadline:
            raise AssertionError(f"Sentinel did not promote port {port} in {FAILOVER_TIMEOUT} s")
        await anyio.sleep(0.1)


def test_publishes_during_failovers_answer_201_or_503(failovers: Failovers) -> None:
    assert failovers.publishing.problems == []
    assert set(failovers.publishing.statuses) <= {"201", "503"}, failovers.publishing.statuses


def test_publishing_recovers_after_each_failover(failovers: Failovers) -> None:
    # The scenario waits for ACKS_PER_PHASE acknowledgements before and after each failover.
    before, between, after = failovers.acked_per_phase
    assert before >= ACKS_PER_PHASE
    assert between - before >= ACKS_PER_PHASE
    assert after - between >= ACKS_PER_PHASE


def test_every_acknowledged_item_reaches_every_subscriber_once_in_order(
    failovers: Failovers,
) -> None:
    acked = set(failovers.publishing.acked)
    for subscriber in failovers.subscribers:
        assert acked <= set(subscriber.items)
        assert len(subscriber.items) == len(set(subscriber.items)), "duplicates"
        assert strictly_increasing(subscriber.items)


def test_acknowledged_ids_increase_across_failovers(failovers: Failovers) -> None:
    ids = failovers.publishing.acked
    assert all(sid(a) < sid(b) for a, b in itertools.pairwise(ids))
