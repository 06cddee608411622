"""Running every scenario against every server, runs interleaved so noise hits all alike."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

from . import servers
from .errors import BenchError
from .fleet import Fleet
from .plan import BARE, FANOUT_PATTERNS, MEMORY, NCHAN, REDIS, Plan
from .results import RunResult
from .scenarios import SCENARIOS
from .servers import Server


@dataclass(frozen=True, slots=True)
class Target:
    """A server to measure, by how to start a fresh one."""

    label: str
    title: str
    start: Callable[[], AbstractAsyncContextManager[Server]]
    scenarios: tuple[str, ...] | None = None
    """The scenarios it takes part in; None for all."""

    def runs(self, scenario: str) -> bool:
        return self.scenarios is None or scenario in self.scenarios


@dataclass(slots=True)
class Outcome:
    """Every run's result, and each server's version as it reported it."""

    runs: list[RunResult] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


PUBLISH_ONLY = ("publish",)


def tailcast_target(logs: Path) -> Target:
    return Target(MEMORY, "Tailcast (memory)", lambda: servers.tailcast(logs))


def redis_target(logs: Path, url: str, workers: int = 1) -> Target:
    """Tailcast on the Redis backend; with ``workers`` > 1, for the publish scenario only."""
    prefixes = (f"tailcast-bench-{os.getpid()}-{n}" for n in itertools.count())

    @contextlib.asynccontextmanager
    async def start() -> AsyncIterator[Server]:
        prefix = next(prefixes)
        servers.delete_prefix(url, prefix)
        try:
            async with servers.tailcast(logs, url, prefix, workers) as server:
                yield server
        finally:
            servers.delete_prefix(url, prefix)

    if workers == 1:
        return Target(REDIS, "Tailcast (Redis)", start)
    title = f"Tailcast (Redis, {workers} workers)"
    return Target(f"tailcast-redis-w{workers}", title, start, PUBLISH_ONLY)


def nchan_target(logs: Path, nofile: int) -> Target:
    return Target(NCHAN, "Nchan", lambda: servers.nginx_nchan(logs, nofile))


def bare_target(logs: Path, workers: int = 1) -> Target:
    """The bare app; with ``workers`` > 1, the ceiling for Tailcast's as many workers."""
    if workers == 1:
        return Target(BARE, "bare uvicorn app", lambda: servers.bare(logs), PUBLISH_ONLY)
    title = f"bare uvicorn app, {workers} workers"
    return Target(f"{BARE}-w{workers}", title, lambda: servers.bare(logs, workers), PUBLISH_ONLY)


async def run_all(
    plan: Plan, targets: list[Target], fleet: Fleet, profile_dir: Path | None
) -> Outcome:
    """Each scenario ``plan.runs_of(scenario)`` times against each target taking part,
    each run on a fresh server."""
    outcome = Outcome()
    for scenario in plan.scenarios:
        runs = plan.runs_of(scenario)
        for run in range(1, runs + 1):
            for target in (t for t in targets if t.runs(scenario)):
                print(f"{scenario} run {run}/{runs}: {target.title}", flush=True)
                profile = None
                fanout = scenario in FANOUT_PATTERNS
                if profile_dir and fanout and run == 1 and target.label.startswith("tailcast"):
                    profile = profile_dir / f"profile-{scenario}-{target.label}"
                try:
                    async with target.start() as server:
                        outcome.versions.setdefault(target.label, server.version)
                        result = await SCENARIOS[scenario](server, fleet, plan, profile)
                except BenchError as exc:
                    result = RunResult(scenario, target.label)
                    result.add_anomalies({"run errors": 1})
                    result.notes.append(str(exc))
                    print(f"    run failed: {exc}", flush=True)
                if profile is not None:
                    result.notes.append(f"profiled with py-spy: {profile}.txt")
                if result.failed:
                    print(f"    FAILED: {result.anomalies} {result.notes}", flush=True)
                outcome.runs.append(result)
    return outcome
