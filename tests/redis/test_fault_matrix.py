"""A fault matrix, Jepsen-style: two instances on Redis through Sentinel (a master, a
replica, three Sentinels), two producers posting continuously, four subscribers that
reconnect with ``Last-Event-ID`` to either instance, and one fault after another:

1. an instance killed (SIGKILL) and restarted;
2. the master paused (SIGSTOP) for 5 s, then resumed (Sentinel fails over meanwhile);
3. ``SENTINEL FAILOVER``;
4. the master killed (SIGKILL), and restarted empty as a replica;
5. an instance's connections to Redis and the Sentinels cut at a TCP proxy for 3 s;
6. Redis restarted empty: every Redis server killed and started again without data.

Settings are the defaults but for a 1 s heartbeat. After each fault the test records, and
the tests below check: no answer 500; every item answered 201 delivered to every
subscriber exactly once in id order, or covered by a ``reset`` naming the last id the
subscriber had; no silence on a stream longer than the heartbeat interval; an instance
started afresh replays exactly what the log holds (``XRANGE`` on the master), and that
holds every item answered 201 (but those a deliberate wipe of Redis took); ids increase
across everything. The figures per fault go to ``tests/artifacts/fault-matrix.json`` and
to stdout (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.redis.helpers import (
    LOG_STREAM,
    ROOT,
    Instance,
    SentinelTopology,
    Subscriber,
    eventually,
    fast_sync,
    logged_ids,
    sentinel_topology,
    sid,
    spawn_instance,
    strictly_increasing,
)
from tests.redis.history import (
    Attempt,
    Producer,
    Reading,
    Replay,
    fresh_instance_replay,
    read,
    real_time_disorder,
    replay,
    up_to,
)
from tests.redis.proxy import Proxy
from tests.redis_support import SENTINEL_MASTER, RedisProcess

HEARTBEAT = 1.0
HEARTBEAT_TOLERANCE = 0.3
"""Seconds a stream's silence may exceed the heartbeat interval. The server ticks every
half interval, so a correct one never leaves a stream silent for more than the interval
(plus milliseconds); the margin is for this test's own process, which reads four streams
while it produces, polls Sentinels and forwards traffic, on a busy 2-core machine. Its
event-loop lag is measured and must stay below the margin (see the last test). A skipped
tick costs half an interval (0.5 s) or more."""
SETTLE = 30.0  # seconds Sentinel and the instances get to recover from a fault
DELIVERY = 15.0  # seconds every subscriber gets to receive what was acknowledged
LIMIT = 200.0  # seconds the whole matrix may take
RECOVERED = 10  # new 201s that show publishing works again after a fault
ARTIFACT = ROOT / "tests" / "artifacts" / "fault-matrix.json"


@dataclass
class Phase:
    """One fault and the check after it."""

    name: str
    start: float = 0.0
    injected: float = 0.0  # when the fault was over (the process restarted, the cut healed)
    end: float = 0.0
    recovered_after: float | None = None  # seconds from `injected` to RECOVERED new 201s
    marks: list[int] = field(default_factory=list)  # len(events) per subscriber at `end`
    missing_at_subscribers: set[tuple[int, str]] = field(default_factory=set)
    missing_from_log: set[str] = field(default_factory=set)
    unlogged_received: set[tuple[int, str, bool]] = field(default_factory=set)
    """(subscriber, id, whether a reset followed) of items received that the log lost."""
    served: list[tuple[Replay, list[str]]] = field(default_factory=list)
    """Per instance: a new stream's replay, and the log up to its cutoff."""
    fresh: Replay | None = None
    logged: list[str] = field(default_factory=list)  # XRANGE up to the fresh replay's cutoff
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Matrix:
    phases: list[Phase]
    attempts: list[Attempt]
    subscribers: list[Subscriber]
    readings: list[Reading]  # each subscriber's whole history (its resets, its order)
    lag: float  # the longest event-loop lag of this test's process (s)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """Run the whole matrix once; every test below checks one promise over it."""
    result = anyio.run(_run, tmp_path_factory.mktemp("matrix"))
    _report(result)
    return result


# -- the cluster under test ---------------------------------------------------------------


class Cluster:
    """The Redis servers, the Sentinels, the proxies and the two instances, and the faults
    that can befall them."""

    def __init__(self, topology: SentinelTopology, proxies: list[Proxy], directory: Path):
        self.topology = topology
        self.proxies = proxies  # instance n reaches Redis through proxies[n]
        self.directory = directory
        self.servers = {s.port: s for s in (topology.master, topology.replica)}
        self.instances: list[Instance] = []
        self.urls: list[str] = []  # the producers': instance n's address at n
        self.routes: list[list[str]] = []  # each subscriber's: its instance first
        self.retired: list[Instance] = []
        self.wiped_at = 0.0  # when Redis lost everything on purpose (fault 6)
        self.wiped_until = 0.0  # when it was back, empty
        self._restarts = 0

    def spawn(self, n: int) -> Instance:
        url = self.proxies[n].sentinel_url(SENTINEL_MASTER)
        return spawn_instance(url, self.directory / "app", "--heartbeat", str(HEARTBEAT))

    async def start_instances(self) -> None:
        self.instances = [self.spawn(n) for n in range(2)]
        for instance in self.instances:
            await anyio.to_thread.run_sync(instance.wait_ready)
        self.urls[:] = [instance.url for instance in self.instances]
        for n in range(4):
            first = self.urls[n % 2]
            self.routes.append([first, *(u for u in self.urls if u != first)])

    def stop(self) -> None:
        for instance in self.instances + self.retired:
            instance.stop()

    def master(self) -> RedisProcess:
        port = self.topology.master_port()
        assert port is not None, "no Sentinel names a master"
        return self.servers[port]

    def replica(self) -> RedisProcess:
        master = self.master()
        return next(s for s in self.servers.values() if s is not master)

    async def settled(self) -> None:
        """Until the Sentinels agree on a master that has its replica online, and every
        instance is healthy."""
        deadline = time.monotonic() + SETTLE
        while True:
            if await anyio.to_thread.run_sync(self._settled):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster did not settle in {SETTLE} s")
            await anyio.sleep(0.2)

    def _settled(self) -> bool:
        ports = set()
        for sentinel in self.topology.sentinels:
            with contextlib.suppress(Exception), sentinel.client() as client:
                address: Any = client.sentinel_get_master_addr_by_name(SENTINEL_MASTER)
                ports.add(int(address[1]))
        if len(ports) != 1:
            return False
        master = self.servers.get(ports.pop())
        if master is None:
            return False
        with contextlib.suppress(Exception), master.client() as client:
            info: Any = client.info("replication")
            if info.get("role") != "master" or info.get("slave0", {}).get("state") != "online":
                return False
            for instance in self.instances:
                if httpx.get(instance.url + "/healthz", timeout=2).status_code != 200:
                    return False
            return True
        return False

    async def restart_server(self, old: RedisProcess, replica_of: int | None) -> RedisProcess:
        """A new, empty server on ``old``'s port."""
        self._restarts += 1
        server = RedisProcess(
            self.directory / f"redis-{self._restarts}", port=old.port, replica_of=replica_of
        )
        await anyio.to_thread.run_sync(server.start)
        fast_sync(server)
        self.servers[old.port] = server
        return server

    def kill_all(self) -> None:
        for server in self.servers.values():
            server.kill()

    # -- the faults ------------------------------------------------------------------------

    async def kill_instance(self) -> None:
        victim = self.instances[0]
        victim.kill()
        self.retired.append(victim)
        await anyio.sleep(1.0)  # its clients move to the other instance meanwhile
        instance = self.spawn(0)
        await anyio.to_thread.run_sync(instance.wait_ready)
        self.instances[0] = instance
        self.urls[0] = instance.url
        for route in self.routes:
            route[:] = [instance.url if url == victim.url else url for url in route]

    async def pause_master(self) -> None:
        process = self.master().process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        try:
            await anyio.sleep(5.0)
        finally:
            process.send_signal(signal.SIGCONT)

    async def manual_failover(self) -> None:
        before = self.master().port
        with self.topology.sentinels[0].client() as sentinel:
            sentinel.sentinel_failover(SENTINEL_MASTER)
        await self._promoted_away_from(before)

    async def kill_master(self) -> None:
        dead = self.master()
        dead.kill()
        await self._promoted_away_from(dead.port)
        await self.restart_server(dead, replica_of=self.master().port)

    async def cut_instance(self) -> None:
        proxy = self.proxies[0]
        proxy.cut()
        try:
            await anyio.sleep(3.0)
        finally:
            proxy.heal()

    async def wipe_redis(self) -> None:
        master, replica = self.master(), self.replica()
        self.wiped_at = time.monotonic()
        self.kill_all()
        await self.restart_server(master, replica_of=None)
        await self.restart_server(replica, replica_of=master.port)
        self.wiped_until = time.monotonic()

    async def _promoted_away_from(self, port: int) -> None:
        deadline = time.monotonic() + SETTLE
        while await anyio.to_thread.run_sync(self.topology.master_port) in (port, None):
            if time.monotonic() > deadline:
                raise AssertionError(f"Sentinel did not promote a replica in {SETTLE} s")
            await anyio.sleep(0.1)


# -- the run ------------------------------------------------------------------------------


async def _run(directory: Path) -> Matrix:
    with contextlib.ExitStack() as stack:
        topology = stack.enter_context(sentinel_topology(directory / "redis"))
        topology.quicken()
        ports = [topology.master.port, topology.replica.port]
        sentinels = [s.port for s in topology.sentinels]
        proxies = [stack.enter_context(Proxy(ports, sentinels)) for _ in range(2)]
        cluster = Cluster(topology, proxies, directory)
        stack.callback(cluster.kill_all)  # the restarted servers too
        stack.callback(cluster.stop)
        await cluster.start_instances()
        with anyio.fail_after(LIMIT):
            return await _exercise(cluster)
    raise AssertionError("unreachable")  # pragma: no cover


async def _exercise(cluster: Cluster) -> Matrix:
    subscribers = [Subscriber(route) for route in cluster.routes]
    producers = [Producer(n, cluster.urls) for n in range(2)]
    faults: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("none (steady state)", lambda: anyio.sleep(3.0)),
        ("instance SIGKILL, restarted", cluster.kill_instance),
        ("master SIGSTOP 5 s, SIGCONT", cluster.pause_master),
        ("SENTINEL FAILOVER", cluster.manual_failover),
        ("master SIGKILL, restarted empty as a replica", cluster.kill_master),
        ("instance's Redis connections cut 3 s (proxy)", cluster.cut_instance),
        ("Redis restarted empty (all data gone)", cluster.wipe_redis),
    ]
    phases: list[Phase] = []
    lag = [0.0]
    limits = httpx.Limits(max_connections=50)
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(5.0), limits=limits) as client,
        anyio.create_task_group() as background,
    ):
        background.start_soon(_measure_lag, lag)
        for subscriber in subscribers:
            background.start_soon(subscriber.run, client)
        with anyio.fail_after(10):
            for subscriber in subscribers:
                await subscriber.live.wait()
        for producer in producers:
            background.start_soon(producer.run, client)
        for name, fault in faults:
            phase = Phase(name, start=time.monotonic())
            phases.append(phase)
            await fault()
            phase.injected = time.monotonic()
            await cluster.settled()
            await _check(cluster, client, phase, phases, producers, subscribers)
        background.cancel_scope.cancel()
    attempts = [a for p in producers for a in p.attempts]
    readings = [read(s.events, ()) for s in subscribers]
    return Matrix(phases, attempts, subscribers, readings, lag[0])


async def _measure_lag(longest: list[float]) -> None:
    while True:
        before = time.monotonic()
        await anyio.sleep(0.05)
        longest[0] = max(longest[0], time.monotonic() - before - 0.05)


async def _check(
    cluster: Cluster,
    client: httpx.AsyncClient,
    phase: Phase,
    phases: list[Phase],
    producers: list[Producer],
    subscribers: list[Subscriber],
) -> None:
    """After a fault: wait for publishing and delivery to recover, then take the figures."""
    phase.recovered_after = await _publishing_recovered(producers, phase.injected)
    acked = [a.id for p in producers for a in p.attempts if a.id is not None]
    readings: list[Reading] = []
    known = phases[-2].missing_at_subscribers if len(phases) > 1 else set()

    def read_all() -> bool:
        """Whether nothing is missing but what was already found missing before."""
        readings[:] = [read(s.events, acked) for s in subscribers]
        return all((n, id) in known for n, r in enumerate(readings) for id in r.missing)

    async def delivered() -> bool:
        # In a thread: reading thousands of events would hold up this loop's streams.
        return await anyio.to_thread.run_sync(read_all)

    with contextlib.suppress(AssertionError):  # what is missing is recorded
        await eventually(delivered, within=DELIVERY, interval=0.2)
    phase.missing_at_subscribers = {
        (n, id) for n, reading in enumerate(readings) for id in reading.missing
    }
    # What the subscribers received that the log no longer holds (a wipe aside), and
    # whether a reset followed.
    received = [len(s.events) for s in subscribers]
    with cluster.master().client() as master:
        log = set(logged_ids(master))
        # Items from before a wipe of Redis are gone on purpose: only those past the
        # first entry of the new log (its epoch marker) count.
        first: Any = master.xrange(LOG_STREAM, count=1) if cluster.wiped_at else []
    floor = sid(first[0][0].decode()) if first else (0, 0)
    unlogged = await anyio.to_thread.run_sync(
        _unlogged_received, subscribers, readings, received, log, floor
    )
    seen = {(n, id) for earlier in phases[:-1] for n, id, _ in earlier.unlogged_received}
    phase.unlogged_received = {entry for entry in unlogged if entry[:2] not in seen}
    # What each instance serves, and what an instance started now replays.
    for instance in cluster.instances:
        served = await replay(client, instance.url)
        with cluster.master().client() as master:
            phase.served.append((served, up_to(logged_ids(master), served.cutoff)))
    started = time.monotonic()
    fresh, _ = await fresh_instance_replay(
        client, cluster.topology.url, cluster.directory / "fresh", "--heartbeat", str(HEARTBEAT)
    )
    with cluster.master().client() as master:
        phase.logged = up_to(logged_ids(master), fresh.cutoff)
    phase.fresh = fresh
    replayed = set(fresh.items)
    phase.missing_from_log = {
        a.id
        for p in producers
        for a in p.attempts
        if a.id is not None
        and a.answered < started
        and a.id not in replayed
        # A write answered before the wipe may be gone; one sent after it may not.
        and (not cluster.wiped_at or a.sent >= cluster.wiped_until)
    }
    phase.end = time.monotonic()
    phase.marks = [len(s.events) for s in subscribers]
    histories = await anyio.to_thread.run_sync(
        lambda: [read(s.events[:m], ()) for s, m in zip(subscribers, phase.marks, strict=True)]
    )
    phase.figures = _figures(phase, phases, producers, subscribers, histories)


def _unlogged_received(
    subscribers: list[Subscriber],
    readings: list[Reading],
    received: list[int],
    log: set[str],
    floor: tuple[int, int],
) -> set[tuple[int, str, bool]]:
    """(subscriber, id, whether a reset came after it) of every item from ``floor`` on
    that a subscriber received (among its first ``received`` events) and the log lacks."""
    found = set()
    for n, (subscriber, reading) in enumerate(zip(subscribers, readings, strict=True)):
        last_reset = max((r.index for r in read(subscriber.events, ()).resets), default=-1)
        for index, id in reading.items:
            if index < received[n] and id not in log and sid(id) >= floor:
                found.add((n, id, last_reset > index))
    return found


async def _publishing_recovered(producers: list[Producer], since: float) -> float | None:
    def count() -> int:
        return sum(1 for p in producers for a in p.attempts if a.id and a.sent >= since)

    with contextlib.suppress(AssertionError):
        await eventually(lambda: count() >= RECOVERED, within=SETTLE, interval=0.05)
        firsts = sorted(
            a.answered for p in producers for a in p.attempts if a.id and a.sent >= since
        )
        return round(firsts[RECOVERED - 1] - since, 3)
    return None


def _figures(
    phase: Phase,
    phases: list[Phase],
    producers: list[Producer],
    subscribers: list[Subscriber],
    histories: list[Reading],
) -> dict[str, Any]:
    """The phase's figures; ``histories`` are the subscribers' readings up to its end."""
    previous = phases[-2] if len(phases) > 1 else None
    begin = [0] * len(subscribers) if previous is None else previous.marks
    parts = [
        reading.between(b, e) for reading, b, e in zip(histories, begin, phase.marks, strict=True)
    ]
    outcomes = Counter(
        a.outcome for p in producers for a in p.attempts if phase.start <= a.sent < phase.end
    )
    seen_lost = set() if previous is None else previous.missing_at_subscribers
    seen_gone = set() if previous is None else previous.missing_from_log
    assert phase.fresh is not None
    resets = Counter(r.reason for part in parts for r in part.resets)
    return {
        "fault": phase.name,
        "seconds": round(phase.end - phase.start, 1),
        "answered_201": outcomes.get("201", 0),
        "answered": dict(outcomes),
        "answered_500": sum(
            n for o, n in outcomes.items() if o.isdigit() and int(o) >= 500 and o != "503"
        ),
        "publishing_recovered_after_s": phase.recovered_after,
        "delivered": sum(len(part.items) for part in parts),
        "lost_at_subscribers": len(phase.missing_at_subscribers - seen_lost),
        "lost_from_log": len(phase.missing_from_log - seen_gone),
        "duplicated": sum(len(part.duplicates) for part in parts),
        "out_of_order": sum(len(part.disorder) for part in parts),
        "resets_sent": sum(resets.values()),
        "reset_reasons": dict(resets),
        "resets_misnamed": sum(len(part.misnamed) for part in parts),
        "longest_heartbeat_gap_s": round(
            max(s.longest_silence(phase.start, phase.end) for s in subscribers), 3
        ),
        "received_unlogged": len({id for _, id, _ in phase.unlogged_received}),
        "received_unlogged_without_reset": sum(
            1 for *_, told in phase.unlogged_received if not told
        ),
        "instances_serve_the_log": [served.items == logged for served, logged in phase.served],
        "fresh_replay_items": len(phase.fresh.items),
        "fresh_replay_matches_log": phase.fresh.items == phase.logged,
        "sample_lost_at_subscribers": sorted(phase.missing_at_subscribers - seen_lost)[:3],
        "sample_lost_from_log": sorted(phase.missing_from_log - seen_gone)[:3],
    }


LEGEND = {
    "seconds": "from the fault's start to the end of the check after it",
    "answered": "outcomes of POST /items sent in the phase (status, or transport error)",
    "answered_500": "answers 500 (any 5xx but 503)",
    "publishing_recovered_after_s": f"from the fault's end to the {RECOVERED}th new 201",
    "delivered": "item events the four subscribers received in the phase (all together)",
    "lost_at_subscribers": "new (subscriber, item) pairs: answered 201, never delivered, "
    "and not covered by a reset",
    "lost_from_log": "new items answered 201 missing from a fresh instance's replay "
    "(items answered before the deliberate wipe of Redis excepted)",
    "duplicated": "items a subscriber received again with no reset in between",
    "out_of_order": "items not above the previous one since the last reset",
    "resets_sent": "reset events the subscribers received in the phase",
    "resets_misnamed": "resets whose 'requested' is not the last id the subscriber had",
    "longest_heartbeat_gap_s": "longest silence (no event, no heartbeat) of one connection",
    "received_unlogged": "items subscribers received that the log no longer holds",
    "received_unlogged_without_reset": "(subscriber, item) pairs of those with no reset after",
    "instances_serve_the_log": "per instance: a new stream's replay equals XRANGE to its cutoff",
    "fresh_replay_matches_log": "an instance started now replays XRANGE to its cutoff exactly",
}


def _report(result: Matrix) -> None:
    figures = [phase.figures for phase in result.phases]
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    report = {"legend": LEGEND, "phases": figures, "test_lag_s": round(result.lag, 3)}
    ARTIFACT.write_text(json.dumps(report, indent=2))
    columns = [
        ("201", "answered_201"),
        ("500", "answered_500"),
        ("deliv", "delivered"),
        ("lost@sub", "lost_at_subscribers"),
        ("lost@log", "lost_from_log"),
        ("dup", "duplicated"),
        ("resets", "resets_sent"),
        ("gap s", "longest_heartbeat_gap_s"),
        ("replay=log", "fresh_replay_matches_log"),
    ]
    lines = ["fault matrix (" + os.fspath(ARTIFACT.relative_to(ROOT)) + ")"]
    lines.append(f"{'fault':46}" + "".join(f"{title:>11}" for title, _ in columns))
    for row in figures:
        lines.append(f"{row['fault'][:46]:46}" + "".join(f"{row[key]!s:>11}" for _, key in columns))
    lines.append(f"longest event-loop lag of the test process: {result.lag:.3f} s")
    print("\n" + "\n".join(lines))


# -- the promises -------------------------------------------------------------------------


def _per_phase(matrix: Matrix, key: str) -> dict[str, Any]:
    return {phase.name: phase.figures[key] for phase in matrix.phases}


def test_no_request_is_answered_500_under_any_fault(matrix: Matrix) -> None:
    assert all(n == 0 for n in _per_phase(matrix, "answered_500").values()), _per_phase(
        matrix, "answered"
    )


def test_publishing_recovers_after_every_fault(matrix: Matrix) -> None:
    recovered = _per_phase(matrix, "publishing_recovered_after_s")
    assert all(seconds is not None for seconds in recovered.values()), recovered


def test_every_acknowledged_item_reaches_every_subscriber_or_is_covered_by_a_reset(
    matrix: Matrix,
) -> None:
    lost = _per_phase(matrix, "lost_at_subscribers")
    assert all(n == 0 for n in lost.values()), lost


def test_no_subscriber_gets_an_item_twice_or_out_of_order(matrix: Matrix) -> None:
    duplicated = _per_phase(matrix, "duplicated")
    disorder = _per_phase(matrix, "out_of_order")
    assert all(n == 0 for n in duplicated.values()), duplicated
    assert all(n == 0 for n in disorder.values()), disorder


def test_resets_name_the_last_id_the_subscriber_had(matrix: Matrix) -> None:
    for reading in matrix.readings:
        assert not reading.misnamed, reading.misnamed[:3]


def test_no_acknowledged_item_is_lost_from_the_log(matrix: Matrix) -> None:
    # But those acknowledged before the test wiped Redis on purpose (the last fault).
    lost = _per_phase(matrix, "lost_from_log")
    assert all(n == 0 for n in lost.values()), lost


def test_every_instance_serves_what_the_log_holds(matrix: Matrix) -> None:
    serve = _per_phase(matrix, "instances_serve_the_log")
    assert all(all(each) for each in serve.values()), serve


def test_subscribers_that_received_items_the_log_lost_got_a_reset(matrix: Matrix) -> None:
    untold = _per_phase(matrix, "received_unlogged_without_reset")
    assert all(n == 0 for n in untold.values()), (untold, _per_phase(matrix, "received_unlogged"))


def test_a_fresh_instance_replays_exactly_what_the_log_holds(matrix: Matrix) -> None:
    for phase in matrix.phases:
        assert phase.fresh is not None
        extra = sorted(set(phase.fresh.items) - set(phase.logged))[:3]
        absent = sorted(set(phase.logged) - set(phase.fresh.items))[:3]
        assert phase.fresh.items == phase.logged, f"{phase.name}: extra {extra}, absent {absent}"


def test_heartbeat_gaps_stay_within_the_interval(matrix: Matrix) -> None:
    gaps = _per_phase(matrix, "longest_heartbeat_gap_s")
    assert max(gaps.values()) <= HEARTBEAT + HEARTBEAT_TOLERANCE, (gaps, matrix.lag)


def test_ids_strictly_increase_across_every_fault(matrix: Matrix) -> None:
    for producer in {a.producer for a in matrix.attempts}:
        acked = [a.id for a in matrix.attempts if a.producer == producer and a.id is not None]
        assert strictly_increasing(acked)
    assert real_time_disorder(matrix.attempts) == []
    for phase in matrix.phases:
        assert strictly_increasing(phase.logged)
    last = matrix.phases[-1]
    before_wipe = [sid(a.id) for a in matrix.attempts if a.id and a.answered < last.start]
    after_wipe = [sid(a.id) for a in matrix.attempts if a.id and a.sent >= last.injected]
    assert before_wipe
    assert after_wipe
    assert min(after_wipe) > max(before_wipe), "ids went back after Redis lost everything"


def test_the_test_process_kept_up_with_the_streams(matrix: Matrix) -> None:
    """The test's own event loop kept up, so the heartbeat figures measure the server."""
    assert matrix.lag < HEARTBEAT_TOLERANCE, matrix.lag
