"""The load client's processes: each runs its own uvloop and takes commands over a pipe.

Two cores are shared by the server and the client, so the client's work is spread over a
few processes that the scheduler can place wherever the server leaves room.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

import uvloop

from .errors import BenchError
from .load import OpenReport, Progress, PublishReport, Streams, publish_load, publish_range
from .tally import Tally
from .wire import Wire


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A process's tally since the previous snapshot, and its CPU time so far."""

    tally: Tally
    cpu_seconds: float


class _Worker:
    """The commands a client process runs; replies go back over the pipe."""

    def __init__(self) -> None:
        self.streams = Streams()

    async def open_streams(
        self,
        wire: Wire,
        channel: str,
        count: int,
        concurrency: int,
        wait_s: float,
        producers: int,
    ) -> OpenReport:
        return await self.streams.open(wire, channel, count, concurrency, wait_s, producers)

    def progress(self) -> Progress:
        return self.streams.progress()

    def snapshot(self) -> Snapshot:
        self.streams.flush()
        return Snapshot(self.streams.tally.drain(), time.process_time())

    def close_streams(self) -> int:
        return self.streams.close()

    async def publish_load(self, **job: Any) -> PublishReport:
        return await publish_load(**job)

    async def publish_range(self, **job: Any) -> int:
        return await publish_range(**job)


def _worker_main(conn: Connection) -> None:
    # Ctrl-C belongs to the coordinator, which stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    uvloop.run(_serve(conn))


async def _serve(conn: Connection) -> None:
    worker = _Worker()
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    tasks: set[asyncio.Task[None]] = set()

    async def run(request_id: int, name: str, kwargs: dict[str, Any]) -> None:
        try:
            result = getattr(worker, name)(**kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            conn.send((request_id, True, result))
        except Exception as exc:
            conn.send((request_id, False, f"{type(exc).__name__}: {exc}"))

    def readable() -> None:
        try:
            while conn.poll():
                request_id, name, kwargs = conn.recv()
                if name == "stop":
                    stopped.set_result(None)
                    return
                task = loop.create_task(run(request_id, name, kwargs))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except EOFError:
            if not stopped.done():
                stopped.set_result(None)

    _watch(conn, readable)
    flusher = loop.create_task(worker.streams.keep_flushing())
    await stopped
    flusher.cancel()
    worker.close_streams()


def _watch(conn: Connection, callback: Callable[..., None], *args: Any) -> None:
    """Call ``callback(*args)`` whenever ``conn`` has data, in the running loop.

    libuv (uvloop) makes a watched fd non-blocking, and `Connection` cannot read or write a
    message in pieces: a large reply would raise midway and corrupt the pipe. So the fd goes
    back to blocking; it is only read when readable, and whole messages arrive promptly.
    """
    asyncio.get_running_loop().add_reader(conn.fileno(), callback, *args)
    os.set_blocking(conn.fileno(), True)


class Fleet:
    """A few client processes, addressed all at once or one by one.

    Use as an async context manager: the processes are stopped (killed if need be) on exit.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()

    async def __aenter__(self) -> Fleet:
        context = multiprocessing.get_context("spawn")
        for index in range(self.size):
            ours, theirs = context.Pipe()
            proc = context.Process(
                target=_worker_main, args=(theirs,), name=f"bench-client-{index}", daemon=True
            )
            proc.start()
            theirs.close()
            self._conns.append(ours)
            self._procs.append(proc)
            _watch(ours, self._readable, ours)
        await self._all("progress")  # every process is up and answering
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for conn in self._conns:
            loop.remove_reader(conn.fileno())
            with contextlib.suppress(OSError):
                conn.send((-1, "stop", {}))
        deadline = time.monotonic() + 5
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        for conn in self._conns:
            conn.close()
        for future in self._pending.values():
            future.cancel()

    def _readable(self, conn: Connection) -> None:
        try:
            while conn.poll():
                request_id, ok, value = conn.recv()
                future = self._pending.pop(request_id, None)
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(BenchError(f"client process failed: {value}"))
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BenchError("a client process died"))

    async def _one(self, index: int, name: str, **kwargs: Any) -> Any:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._conns[index].send((request_id, name, kwargs))
        return await future

    async def _all(self, name: str, per_worker: list[dict[str, Any]] | None = None) -> list[Any]:
        jobs = per_worker or [{} for _ in range(self.size)]
        return list(
            await asyncio.gather(*(self._one(i, name, **job) for i, job in enumerate(jobs)))
        )

    def split(self, total: int) -> list[int]:
        """``total`` shared out over the processes as evenly as can be."""
        return [total // self.size + (i < total % self.size) for i in range(self.size)]

    async def open_streams(
        self,
        wire: Wire,
        channel: str,
        count: int,
        concurrency: int = 64,
        wait_s: float = 30,
        producers: int = 1,
    ) -> OpenReport:
        """Open ``count`` streams on ``channel``, spread over the processes.

        Each process opens ``concurrency`` at a time; each stream has ``wait_s`` seconds to
        connect and be subscribed, and checks the items of ``producers`` producers.
        """
        jobs = [
            {
                "wire": wire,
                "channel": channel,
                "count": n,
                "concurrency": concurrency,
                "wait_s": wait_s,
                "producers": producers,
            }
            for n in self.split(count)
        ]
        reports = cast(list[OpenReport], await self._all("open_streams", jobs))
        first = next((r.first_error for r in reports if r.first_error), "")
        return OpenReport(sum(r.opened for r in reports), sum(r.failed for r in reports), first)

    async def progress(self) -> Progress:
        parts = cast(list[Progress], await self._all("progress"))
        alive = [p for p in parts if p.alive]
        lowest = min((p.lowest_next for p in alive), default=0)
        return Progress(lowest, sum(p.alive for p in parts), sum(p.events for p in parts))

    async def snapshot(self) -> Snapshot:
        """The merged tallies since the last snapshot, and the processes' CPU time so far."""
        parts = cast(list[Snapshot], await self._all("snapshot"))
        tally = Tally()
        for part in parts:
            tally.merge(part.tally)
        return Snapshot(tally, sum(p.cpu_seconds for p in parts))

    async def close_streams(self) -> None:
        await self._all("close_streams")

    async def publish_load(
        self, wire: Wire, channel: str, connections: int, duration: float, batch: int, keys: int
    ) -> PublishReport:
        """Closed-loop publishing over ``connections`` connections shared out over processes."""
        shares = [n for n in self.split(connections) if n]
        jobs = [
            {
                "wire": wire,
                "channel": channel,
                "connections": n,
                "duration": duration,
                "batch": batch,
                "seq_base": index * 100_000_000_000,
                "keys": keys,
            }
            for index, n in enumerate(shares)
        ]
        parts = cast(
            list[PublishReport],
            await asyncio.gather(
                *(self._one(i, "publish_load", **job) for i, job in enumerate(jobs))
            ),
        )
        report = PublishReport()
        for part in parts:
            report.merge(part)
        return report

    async def publish_range(self, wire: Wire, channel: str, seqs: range, connections: int) -> int:
        """Publish items ``seqs`` once each, the range and connections shared out."""
        shares = self.split(len(seqs))
        conns = self.split(connections)
        jobs, first = [], seqs.start
        for share, n in zip(shares, conns, strict=True):
            if share and n:
                part = range(first, first + share)
                jobs.append({"wire": wire, "channel": channel, "seqs": part, "connections": n})
                first += share
        if first != seqs.stop:
            raise ValueError("more processes than connections: give each one a connection")
        stored = await asyncio.gather(
            *(self._one(i, "publish_range", **job) for i, job in enumerate(jobs))
        )
        return sum(cast(list[int], stored))
