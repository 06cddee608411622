"""Instructions per request, counted with callgrind: a server under valgrind, the load here.

``python -m bench.instructions --server tailcast|bare --connections N --requests M`` starts
the server (`tailcast serve`, on the memory backend or with ``--redis URL`` on Redis, or
the bare app) under
``valgrind --tool=callgrind`` with instrumentation off, warms it up, then counts two runs
of single-item POSTs (bodies as the bench sends them, keys ``k0``-``k999``) sent
back to back over N keep-alive connections: M requests, then 2M (``--batch B``: each a
batch of B items, and the count is per item as well; Redis's own work is not counted).
Per POST is the difference of the two counts over M (the server's whole cost: uvicorn,
httptools, uvloop and the app, less what does not grow with the requests). Counts, not a
rate: they do not depend on the machine's load (on Redis, the tail's reads depend on
timing, and counts of batches vary by about 10% between runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import BenchError
from .http import HttpConnection
from .servers import _free_port
from .wire import Wire

_KEYS = 1000
_TOTALS = re.compile(rb"^(?:summary|totals): (\d+)", re.M)


def _argv(kind: str, wire: Wire, out: Path) -> list[str]:
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    valgrind.append(f"--callgrind-out-file={out / 'callgrind.out'}")
    if kind == "bare":
        app = ["-m", "bench.bare", "--host", wire.host, "--port", str(wire.port)]
    else:
        app = ["-c", "from app.cli import main; raise SystemExit(main(['serve']))"]
    return [*valgrind, sys.executable, *app]


async def _ready(wire: Wire, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError("the server under valgrind exited")
        try:
            conn = await HttpConnection.open(wire.host, wire.port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        try:
            status, _ = await conn.request(wire.health())
        finally:
            conn.close()
        if status == 200:
            return
    raise BenchError("the server did not answer within 600 s under valgrind")


async def _post(
    conns: list[HttpConnection], wire: Wire, first: int, count: int, batch: int = 1
) -> None:
    """``count`` POSTs, each connection sending its next one when its last is answered."""
    seqs = iter(range(first, first + count * batch, batch))

    def request(seq: int) -> bytes:
        if batch == 1:
            return wire.publish("bench", seq, f"k{seq % _KEYS}")
        return wire.publish_batch("bench", range(seq, seq + batch), _KEYS)

    async def run(conn: HttpConnection) -> None:
        for seq in seqs:
            status, body = await conn.request(request(seq))
            if status != 201:
                raise BenchError(f"HTTP {status}: {body[:200]!r}")

    await asyncio.gather(*(run(conn) for conn in conns))


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _control(pid: int, *flags: str) -> None:
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True)


def _dumped(out: Path, seen: set[Path]) -> int:
    """The total of the one dump written since the last call."""
    new = set(out.glob("callgrind.out.*")) - seen
    if len(new) != 1:
        raise BenchError(f"expected one new callgrind dump, found {sorted(new)}")
    (path,) = new
    seen.add(path)
    found = _TOTALS.search(path.read_bytes())
    if found is None:
        raise BenchError(f"no totals in {path}")
    return int(found[1])


async def count(
    kind: str, connections: int, requests: int, batch: int = 1, redis: str | None = None
) -> tuple[int, int]:
    """Instructions for ``requests`` POSTs and for twice as many, on a fresh server."""
    wire = Wire("bare" if kind == "bare" else "tailcast", "127.0.0.1", _free_port())
    wire = Wire(wire.kind, wire.host, wire.port, secrets.token_urlsafe(16))
    env = {
        **os.environ,
        "TAILCAST_HOST": wire.host,
        "TAILCAST_PORT": str(wire.port),
        "TAILCAST_PUBLISH_TOKEN": wire.token,
        "TAILCAST_LOG_LEVEL": "warning",
        "TAILCAST_BACKEND": redis or "memory",
        "TAILCAST_REDIS_PREFIX": f"bench-instructions-{secrets.token_hex(4)}",
    }
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        out = Path(tmp)
        process = _start(_argv(kind, wire, out), env)
        try:
            await _ready(wire, process)
            conns = [await HttpConnection.open(wire.host, wire.port) for _ in range(connections)]
            await _post(conns, wire, 0, 2 * _KEYS, batch)  # warm: every key cached, paths taken
            seen: set[Path] = set()
            _control(process.pid, "--instr=on")
            _control(process.pid, "--dump")
            _dumped(out, seen)
            totals = []
            for run, size in enumerate((requests, 2 * requests)):
                await _post(conns, wire, (run + 3) * _KEYS * 10 * batch, size, batch)
                _control(process.pid, "--dump")
                totals.append(_dumped(out, seen))
            for conn in conns:
                conn.close()
        finally:
            process.terminate()
            process.wait(120)
    return totals[0], totals[1]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--server", choices=["tailcast", "bare"], default="tailcast")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1, help="items per POST")
    parser.add_argument("--redis", help="a Redis URL: Tailcast on the Redis backend")
    args = parser.parse_args()
    if args.server == "bare" and (args.batch > 1 or args.redis):
        parser.error("the bare app takes neither --batch nor --redis")
    short, long = asyncio.run(
        count(args.server, args.connections, args.requests, args.batch, args.redis)
    )
    per = (long - short) / args.requests
    backend = "Redis" if args.redis else "memory"
    what = f"POSTs of {args.batch} items" if args.batch > 1 else "POSTs"
    print(
        f"{args.server} ({backend}), {args.connections} connection(s): {short:,} instructions"
        f" for {args.requests} {what}, {long:,} for {2 * args.requests}: {per:,.0f} per POST"
        + (f", {per / args.batch:,.0f} per item" if args.batch > 1 else "")
    )


if __name__ == "__main__":
    main()
