"""The scenarios: fan-out per producer pattern (with latency, POST round trips and CPU per
delivery), replay, idle memory, publish.

Each takes a freshly started server and the load client's processes, and returns one
`RunResult`; the caller starts and stops the server around it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path

from .errors import BenchError
from .fleet import Fleet
from .plan import FANOUT_PATTERNS, LATENCY_SCENARIO, Pattern, Plan
from .producers import Producer, producer_for
from .profiling import sampling
from .results import RunResult, Step
from .servers import Server
from .sse import open_stream
from .tally import Tally

Scenario = Callable[[Server, Fleet, Plan, Path | None], Awaitable[RunResult]]

_REPLAY_TIMEOUT = 10.0
"""Longest a replay may take; a slower one is reported as a rate over this time."""


def _say(message: str) -> None:
    print(message, flush=True)


def fanout_scenario(name: str) -> Scenario:
    """The fan-out scenario ``name``: its producer pattern, and the latency step or not."""
    pattern = FANOUT_PATTERNS[name]

    async def run(server: Server, fleet: Fleet, plan: Plan, profile: Path | None) -> RunResult:
        latency = name == LATENCY_SCENARIO
        return await fanout(name, pattern, latency, server, fleet, plan, profile)

    return run


async def fanout(
    name: str,
    pattern: Pattern,
    latency: bool,
    server: Server,
    fleet: Fleet,
    plan: Plan,
    profile: Path | None,
) -> RunResult:
    """Many subscribers, items from ``pattern``'s producers: (``latency``) a fixed rate for
    latency, POST round trips and CPU, then rising rates.

    The ladder stops at the first step that is not sustained (late, not drained, p99 over
    the limit, or an anomaly); the highest sustained step and the highest delivered rate
    of any step (saturation) are the scenario's figures.
    """
    result = RunResult(name, server.label)
    total = Tally()
    opened = await fleet.open_streams(
        server.wire, "fanout", plan.subscribers, producers=pattern.producers
    )
    if opened.failed:
        result.add_anomalies({"failed subscriptions": opened.failed})
        result.notes.append(f"{opened.failed} subscriptions failed: {opened.first_error}")
        await fleet.close_streams()
        return result
    producer = producer_for(pattern, server.wire, "fanout")
    try:
        if latency:
            await _latency(server, fleet, producer, plan, total, result)
        async with _maybe_sampling(server, profile):
            await _ladder(server, fleet, producer, plan, total, result)
    except (BenchError, OSError) as exc:
        result.add_anomalies({"publish errors": 1})
        result.notes.append(f"{pattern.title}: {exc}")
    finally:
        producer.close()
        await fleet.close_streams()
    _ladder_figures(result)
    result.add_anomalies(total.anomalies)
    return result


async def _latency(
    server: Server,
    fleet: Fleet,
    producer: Producer,
    plan: Plan,
    total: Tally,
    result: RunResult,
) -> None:
    """The fixed-rate step: latency percentiles, POST round trips, server CPU per delivery."""
    rate, seconds = plan.latency_rate, plan.latency_seconds
    step = await _step(server, fleet, producer, plan, rate, seconds, total)
    _say(f"    latency {plan.subscribers} x {rate:g}/s: {_step_line(step)}")
    result.figures.update(
        latency_p50_ms=step.p50_ms or 0.0,
        latency_p99_ms=step.p99_ms or 0.0,
        cpu_per_delivery_us=_cpu_per_delivery_us(step),
        latency_client_cpu=step.client_cpu,
    )
    if step.post_p50_ms is not None and step.post_p99_ms is not None:
        result.figures.update(post_p50_ms=step.post_p50_ms, post_p99_ms=step.post_p99_ms)
    if not step.drained:
        result.notes.append("the latency step did not drain: the server fell behind")
    if not _on_time(step.lag_s, seconds):
        result.notes.append(
            f"the latency step's producer fell behind its schedule (its last item went out "
            f"{step.lag_s * 1000:.0f} ms late): fewer than {rate:g} items/s were published"
        )


def _cpu_per_delivery_us(step: Step) -> float:
    return 1e6 * step.server_cpu * step.wall_s / max(1, step.deliveries)


async def _ladder(
    server: Server,
    fleet: Fleet,
    producer: Producer,
    plan: Plan,
    total: Tally,
    result: RunResult,
) -> None:
    """Rising publish rates until a step is not sustained, twice in a row.

    A step that only missed its latency or schedule gets a second try at the same rate, so
    one stray stall (another process on the machine) does not end the ladder.
    """
    for rate in plan.ladder:
        step = await _step(server, fleet, producer, plan, rate, plan.step_seconds, total)
        _say(f"    {rate:>5g} items/s: {_step_line(step)}")
        if not step.ok and not step.anomalies:
            step = await _step(server, fleet, producer, plan, rate, plan.step_seconds, total)
            step.tries = 2
            _say(f"    {rate:>5g} items/s, again: {_step_line(step)}")
        result.steps.append(step)
        if not step.ok:
            return


def _ladder_figures(result: RunResult) -> None:
    sustained = [s for s in result.steps if s.ok]
    top = max(sustained, key=lambda s: s.delivered, default=None)
    result.figures["fanout_sustained"] = top.delivered if top else 0.0
    result.figures["fanout_saturation"] = max((s.delivered for s in result.steps), default=0.0)
    if top is not None and top.post_p99_ms is not None:
        result.figures["sustained_post_p99_ms"] = top.post_p99_ms
    if result.steps and not sustained:
        result.notes.append(f"no step was sustained, not even {result.steps[0].rate:g} items/s")
    if result.steps and result.steps[-1].ok:
        result.notes.append("the ladder's top rate was sustained: saturation is above it")
    busiest = max(result.steps, key=lambda s: s.delivered, default=None)
    if busiest is not None:
        result.figures["fanout_client_cpu"] = busiest.client_cpu
        result.figures["fanout_server_cpu"] = busiest.server_cpu
        result.figures["saturation_cpu_us"] = _cpu_per_delivery_us(busiest)


def _step_line(step: Step) -> str:
    p50 = "-" if step.p50_ms is None else f"{step.p50_ms:.1f}"
    p99 = "-" if step.p99_ms is None else f"{step.p99_ms:.1f}"
    flags = [] if step.ok else ["NOT SUSTAINED"]
    if not step.drained:
        flags.append("not drained")
    if step.anomalies:
        flags.append(f"anomalies {step.anomalies}")
    post = "" if step.post_p99_ms is None else f"POST p99 {step.post_p99_ms:.1f} ms  "
    return (
        f"{step.delivered:>9,.0f} deliveries/s  p50 {p50} ms  p99 {p99} ms  {post}"
        f"lag {step.lag_s * 1000:.0f} ms  server {step.server_cpu:.0%}  "
        f"client {step.client_cpu:.0%}  {' '.join(flags)}"
    ).rstrip()


def _maybe_sampling(server: Server, profile: Path | None) -> AbstractAsyncContextManager[None]:
    return sampling(server.process.pid, profile) if profile else nullcontext()


async def _step(
    server: Server,
    fleet: Fleet,
    producer: Producer,
    plan: Plan,
    rate: float,
    seconds: float,
    total: Tally,
) -> Step:
    total.merge((await fleet.snapshot()).tally)  # anything left from before: not this step's
    client_before = (await fleet.snapshot()).cpu_seconds + time.process_time()
    server_before = server.cpu_seconds()
    started_ns, started = time.time_ns(), time.monotonic()
    produced = await producer.run(rate, seconds)
    lag = produced.lag_s
    drained = await _drain(fleet, producer.published, plan.subscribers, plan.drain_seconds)
    snap = await fleet.snapshot()
    wall = time.monotonic() - started
    tally = snap.tally
    total.merge(tally)
    elapsed = max(seconds, (tally.last_ns - started_ns) / 1e9)
    delivered = tally.events / elapsed
    p99 = tally.latency.percentile_ms(0.99)
    step = Step(
        rate=rate,
        offered=rate * plan.subscribers,
        delivered=delivered,
        p50_ms=tally.latency.percentile_ms(0.50),
        p99_ms=p99,
        lag_s=lag,
        drained=drained,
        deliveries=tally.events,
        wall_s=wall,
        server_cpu=(server.cpu_seconds() - server_before) / wall,
        client_cpu=(snap.cpu_seconds + time.process_time() - client_before) / wall,
        anomalies=tally.anomalies,
    )
    if produced.round_trips is not None:
        step.post_p50_ms = produced.round_trips.percentile_ms(0.50)
        step.post_p99_ms = produced.round_trips.percentile_ms(0.99)
    within = p99 is not None and p99 <= plan.p99_limit_ms
    step.ok = _on_time(lag, seconds) and drained and within and not step.anomalies
    await asyncio.sleep(0.2)
    return step


def _on_time(lag: float, seconds: float) -> bool:
    """Whether producers that ended ``lag`` s late kept a ``seconds``-long step's schedule."""
    return lag <= max(0.1, 0.05 * seconds)


async def _drain(fleet: Fleet, published: int, streams: int, within: float) -> bool:
    """Wait until every stream has received all ``published`` items; False after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        progress = await fleet.progress()
        if progress.alive < streams:
            return False
        if progress.lowest_next >= published:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


async def replay(server: Server, fleet: Fleet, plan: Plan, profile: Path | None) -> RunResult:
    """One new subscriber reads N cached items (distinct keys), up to `live` (Nchan: the Nth).

    The cache grows from one size to the next, so 10,000 then 100,000 items are replayed.
    """
    result = RunResult("replay", server.label)
    wire = server.wire
    published = 0
    for size in plan.replay_sizes:
        connections = 2 if wire.batches else 8
        published += await fleet.publish_range(wire, "replay", range(published, size), connections)
        tally = Tally()
        started = time.perf_counter()
        stream = await open_stream(
            wire.host,
            wire.port,
            wire.subscribe("replay"),
            wire.ready_marker,
            tally,
            size,
            timed=False,  # count arrivals as they come; check every item after
        )
        try:
            async with asyncio.timeout(_REPLAY_TIMEOUT):
                # Tailcast says `live` after the replay; Nchan has no such event.
                await (stream.ready if wire.kind == "tailcast" else stream.all_arrived)
        except TimeoutError:
            # Too slow is a figure, not an integrity failure: what arrived is still checked.
            elapsed = time.perf_counter() - started
            stream.flush()
            stream.close()
            result.add_anomalies(tally.anomalies)
            result.figures[f"replay_{size}"] = stream.arrived / elapsed
            result.notes.append(
                f"replay of {size:,} items did not finish within {_REPLAY_TIMEOUT:g} s: "
                f"{stream.arrived:,} arrived ({stream.arrived / elapsed:,.0f} items/s)"
            )
            _say(f"    replay {size:,} items: only {stream.arrived:,} in {elapsed:.0f} s")
            break
        except ConnectionError as exc:
            stream.close()
            result.notes.append(f"replay of {size:,} items failed: {exc!r}")
            result.add_anomalies({"stream errors": 1})
            break
        elapsed = time.perf_counter() - started
        stream.flush()
        stream.close()
        if stream.next_seq < size:
            tally.gaps += size - stream.next_seq
        result.add_anomalies(tally.anomalies)
        result.figures[f"replay_{size}"] = size / elapsed
        result.figures[f"replay_{size}_seconds"] = elapsed
        _say(f"    replay {size:,} items: {elapsed:.3f} s, {size / elapsed:,.0f} items/s")
    return result


async def idle(server: Server, fleet: Fleet, plan: Plan, profile: Path | None) -> RunResult:
    """Server memory before and after opening many idle subscribers, per subscriber."""
    result = RunResult("idle", server.label)
    wire = server.wire
    await fleet.open_streams(wire, "idle", 100)  # warm-up: first-use allocations
    await fleet.close_streams()
    await asyncio.sleep(1.0)
    before = server.memory_kib()
    started = time.monotonic()
    opened = await fleet.open_streams(wire, "idle", plan.idle_subscribers, 50, 60)
    connect_seconds = time.monotonic() - started
    await asyncio.sleep(1.0)
    after = server.memory_kib()
    progress = await fleet.progress()
    await fleet.close_streams()
    snap = await fleet.snapshot()
    result.add_anomalies(snap.tally.anomalies)
    if opened.failed:
        result.notes.append(f"{opened.failed} subscribers failed to connect: {opened.first_error}")
    result.figures.update(
        idle_kib=(after - before) / max(1, opened.opened),
        idle_failed=float(opened.failed + (opened.opened - progress.alive)),
        idle_connect_seconds=connect_seconds,
        idle_server_mib=after / 1024,
    )
    _say(
        f"    {opened.opened:,} idle subscribers in {connect_seconds:.1f} s: "
        f"{(after - before) / max(1, opened.opened):.1f} KiB each ({before / 1024:.0f} -> "
        f"{after / 1024:.0f} MiB), {opened.failed} failed"
    )
    return result


async def publish(server: Server, fleet: Fleet, plan: Plan, profile: Path | None) -> RunResult:
    """Closed-loop POSTs: single items over 1 and 8 keep-alive connections, then batches."""
    result = RunResult("publish", server.label)
    wire = server.wire
    runs = [("publish_1", 1, 1), ("publish_8", 8, 1)]
    if wire.batches:
        runs.append(("publish_batch", 2, plan.batch_size))
    for name, connections, batch in runs:
        client_before = (await fleet.snapshot()).cpu_seconds
        report = await fleet.publish_load(
            wire, "publish", connections, plan.publish_seconds, batch, keys=1000
        )
        client = ((await fleet.snapshot()).cpu_seconds - client_before) / report.elapsed
        if report.errors:
            result.add_anomalies({"publish errors": report.errors})
            result.notes.append(f"{name}: {report.errors} errors, first: {report.first_error}")
        per_second = (report.items if batch > 1 else report.requests) / report.elapsed
        result.figures[name] = per_second
        result.figures[f"{name}_p99_ms"] = report.latency.percentile_ms(0.99) or 0.0
        result.figures[f"{name}_client_cpu"] = client
        unit = "items/s" if batch > 1 else "requests/s"
        _say(
            f"    {name} ({connections} conn, batch {batch}): {per_second:,.0f} {unit}, "
            f"p99 {result.figures[f'{name}_p99_ms']:.1f} ms, client {client:.0%}"
        )
    return result


SCENARIOS: dict[str, Scenario] = {
    **{name: fanout_scenario(name) for name in FANOUT_PATTERNS},
    "replay": replay,
    "idle": idle,
    "publish": publish,
}
