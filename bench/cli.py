"""``python -m bench``: run the scenarios, print the figures, write the report and chart."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

import uvloop

from . import machine, nchan, report
from .chart import fanout_chart
from .errors import Unavailable
from .fleet import Fleet
from .plan import BARE, GROUPS, MEMORY, NCHAN, SCENARIOS, Plan
from .profiling import find_py_spy
from .runner import (
    Outcome,
    Target,
    bare_target,
    nchan_target,
    redis_target,
    run_all,
    tailcast_target,
)
from .servers import raise_fd_limit, redis_version

_HEADROOM_FDS = 256
"""File descriptors kept spare beyond one per idle subscriber."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Tailcast (and optionally nginx + Nchan) on this machine.",
    )
    parser.add_argument(
        "--compare", choices=["nchan", ""], default="", help="also measure nginx + Nchan"
    )
    parser.add_argument("--quick", action="store_true", help="1 run, short steps: a smoke check")
    parser.add_argument(
        "--profile", action="store_true", help="sample Tailcast with py-spy during fan-out"
    )
    parser.add_argument(
        "--runs",
        type=int,
        help="runs of every scenario (default 3, but 1 of fanout-pipelined and idle; quick: 1)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, of {', '.join(SCENARIOS)}; fanout means all three fan-out "
        "patterns (default: all)",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="Redis for the Redis-backend runs; keys go under a prefix the bench deletes",
    )
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis-backend runs")
    parser.add_argument(
        "--redis-workers",
        type=int,
        default=2,
        help="also publish to the Redis backend run with this many workers (default 2; 1: no)",
    )
    parser.add_argument("--client-procs", type=int, default=2, help="load client processes")
    parser.add_argument(
        "--results", type=Path, default=Path("bench/results"), help="results, logs, profiles"
    )
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="where the report goes")
    parser.add_argument(
        "--no-docs", action="store_true", help="leave docs/ alone (quick runs always do)"
    )
    parser.add_argument("--command", help="the command to record in the report")
    return parser


def _plan(args: argparse.Namespace, nofile: int) -> Plan:
    plan = Plan.quick_check() if args.quick else Plan.full()
    named = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(named) - set(SCENARIOS) - set(GROUPS)
    if unknown:
        known = (*SCENARIOS, *GROUPS)
        raise SystemExit(f"bench: unknown scenarios {sorted(unknown)}; known: {known}")
    wanted = {member for name in named for member in GROUPS.get(name, (name,))}
    chosen = tuple(name for name in SCENARIOS if name in wanted)
    idle = min(plan.idle_subscribers, nofile - _HEADROOM_FDS)
    if idle < plan.idle_subscribers:
        print(f"bench: open-file limit {nofile}: idle scenario uses {idle} subscribers")
    if args.runs:
        plan = dataclasses.replace(plan, runs=args.runs, once=())
    return dataclasses.replace(plan, scenarios=chosen, idle_subscribers=idle)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        nginx = nchan.find_nginx() if args.compare == "nchan" else None
        if args.profile:
            find_py_spy()
    except Unavailable as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    nofile = raise_fd_limit()
    plan = _plan(args, nofile)
    redis_url = None
    if not args.no_redis:
        if redis_version(args.redis) is None:
            print(f"bench: Redis at {args.redis} unreachable: skipping the Redis backend")
        else:
            redis_url = args.redis
    try:
        return uvloop.run(_main(args, plan, nofile, nginx, redis_url))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: interrupted; every server and client process was stopped", file=sys.stderr)
        return 130


async def _main(
    args: argparse.Namespace, plan: Plan, nofile: int, nginx: Path | None, redis_url: str | None
) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    results: Path = args.results
    logs = results / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    targets: list[Target] = [tailcast_target(logs)]
    if redis_url:
        targets.append(redis_target(logs, redis_url))
        if args.redis_workers > 1:
            targets.append(redis_target(logs, redis_url, args.redis_workers))
    if nginx:
        targets.append(nchan_target(logs, nofile))
    targets.append(bare_target(logs))
    if redis_url and args.redis_workers > 1:
        targets.append(bare_target(logs, args.redis_workers))
    targets = [t for t in targets if any(t.runs(s) for s in plan.scenarios)]
    titles = {target.label: target.title for target in targets}
    started, load_before = time.time(), machine.load_average()
    once = [name for name in plan.once if name in plan.scenarios]
    once_text = f" (once: {', '.join(once)})" if once and plan.runs > 1 else ""
    print(
        f"bench: {'quick' if plan.quick else 'full'} run, {plan.runs} run(s) per figure{once_text}"
    )
    async with Fleet(args.client_procs) as fleet:
        outcome = await run_all(plan, targets, fleet, results if args.profile else None)
    (results / "results.json").write_text(
        json.dumps([dataclasses.asdict(run) for run in outcome.runs], indent=1)
    )
    context = report.Context(
        date=time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(started)),
        command=args.command or shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
        facts=_facts(args, plan, outcome, nginx, redis_url, load_before, time.time() - started),
    )
    _write(args, plan, outcome, titles, context)
    failed = [run for run in outcome.runs if run.failed]
    return 1 if failed else 0


def _facts(
    args: argparse.Namespace,
    plan: Plan,
    outcome: Outcome,
    nginx: Path | None,
    redis_url: str | None,
    load_before: str,
    seconds: float,
) -> dict[str, str]:
    facts = machine.describe()
    facts["load average (1, 5, 15 min) before / after"] = (
        f"{load_before} / {machine.load_average()}"
    )
    facts["duration"] = f"{seconds / 60:.1f} min"
    overrides = sorted(name for name in os.environ if name.startswith("TAILCAST_"))
    workers = (
        f" (and {args.redis_workers} worker processes on Redis, for single POSTs)"
        if redis_url and args.redis_workers > 1
        else ""
    )
    facts["Tailcast"] = (
        f"{outcome.versions.get(MEMORY, '?')}: one process{workers}, default "
        f"settings{' except ' + ', '.join(overrides) if overrides else ''}"
    )
    if redis_url:
        facts["Redis"] = f"{redis_version(redis_url)} at {redis_url}"
    if nginx:
        facts["nginx"] = f"{machine.nginx_version(nginx)}, 1 worker"
        facts["Nchan"] = outcome.versions.get(NCHAN, "?")
    if BARE in outcome.versions:
        bare_workers = (
            f" (and with {args.redis_workers} worker processes: the ceiling for Tailcast's"
            " on Redis)"
            if f"{BARE}-w{args.redis_workers}" in outcome.versions
            else ""
        )
        facts["bare app"] = (
            f"{outcome.versions[BARE]}: bench/bare.py, a minimal ASGI app with Tailcast's "
            "uvicorn settings that reads the body and answers 201 with a small JSON object"
            f"{bare_workers}"
        )
    facts["Python packages"] = ", ".join(f"{k} {v}" for k, v in machine.package_versions().items())
    facts["load client"] = (
        f"{args.client_procs} processes (uvloop) plus the coordinator, which runs the "
        "fan-out's producers"
    )
    return facts


def _write(
    args: argparse.Namespace,
    plan: Plan,
    outcome: Outcome,
    titles: dict[str, str],
    context: report.Context,
) -> None:
    to_docs = not (plan.quick or args.no_docs)
    folder: Path = args.docs if to_docs else args.results
    folder.mkdir(parents=True, exist_ok=True)
    chart = folder / "bench-fanout.png"
    drew = fanout_chart(outcome.runs, titles, plan.subscribers, plan.p99_limit_ms, chart)
    section = report.render(plan, outcome.runs, titles, context, chart.name if drew else None)
    document = folder / "BENCHMARKS.md"
    existing = document.read_text() if document.exists() else "# Benchmarks\n"
    document.write_text(report.splice(existing, section))
    print()
    print(section)
    print(f"bench: wrote {document}{' and ' + str(chart) if drew else ''}")
