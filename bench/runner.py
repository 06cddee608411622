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
from .plan import Plan
from .results import RunResult
from .scenarios import SCENARIOS
from .servers import Server


@dataclass(frozen=True, slots=True)
class Target:
    """A server to measure, by how to start a fresh one."""

    label: str
    title: str
    start: Callable[[], AbstractAsyncContextManager[Server]]


@dataclass(slots=True)
class Outcome:
    """Every run's result, and each server's version as it reported it."""

    runs: list[RunResult] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def tailcast_target(logs: Path) -> Target:
    return Target("tailcast", "Tailcast", lambda: servers.tailcast(logs))


def redis_target(logs: Path, url: str) -> Target:
    prefixes = (f"tailcast-bench-{os.getpid()}-{n}" for n in itertools.count())

    @contextlib.asynccontextmanager
    async def start() -> AsyncIterator[Server]:
        prefix = next(prefixes)
        servers.delete_prefix(url, prefix)
        try:
            async with servers.tailcast(logs, url, prefix) as server:
                yield server
        finally:
            servers.delete_prefix(url, prefix)

    return Target("tailcast-redis", "Tailcast (Redis)", start)


def nchan_target(logs: Path, nofile: int) -> Target:
    return Target("nchan", "Nchan", lambda: servers.nginx_nchan(logs, nofile))


async def run_all(
    plan: Plan, targets: list[Target], fleet: Fleet, profile_dir: Path | None
) -> Outcome:
    """Each scenario ``plan.runs`` times against each target, each run on a fresh server."""
    outcome = Outcome()
    for scenario in plan.scenarios:
        for run in range(1, plan.runs + 1):
            for target in targets:
                print(f"{scenario} run {run}/{plan.runs}: {target.title}", flush=True)
                profile = None
                if profile_dir and scenario == "fanout" and run == 1 and target.label != "nchan":
                    profile = profile_dir / f"profile-fanout-{target.label}"
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
