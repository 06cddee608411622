"""Sampling the server under load with py-spy, and summing the samples by function."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from .errors import Unavailable
from .servers import wait_exited

RATE = 250
"""Samples per second."""


def find_py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise Unavailable("py-spy not found: `make bench` installs it (the bench extra)")
    return found


@contextlib.asynccontextmanager
async def sampling(pid: int, stem: Path) -> AsyncIterator[None]:
    """Sample process ``pid`` while the block runs.

    Writes ``<stem>.collapsed`` (py-spy's raw stacks, for flamegraph tools) and
    ``<stem>.txt``, the functions with the most samples, by self and by total time.
    """
    collapsed = stem.with_suffix(".collapsed")
    argv = [find_py_spy(), "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw"]
    argv += ["--function", "--nonblocking", "--output", str(collapsed)]
    process = _start(argv, stem.with_suffix(".log"))
    try:
        await asyncio.sleep(0.5)  # attached before the load starts
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        await wait_exited(process, 30)
        if process.poll() is None:
            process.kill()
            process.wait()
    _write_summary(collapsed, stem.with_suffix(".txt"))


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def _write_summary(collapsed: Path, out: Path) -> None:
    if collapsed.exists():
        out.write_text(summary(collapsed.read_text()))


def summary(collapsed: str, top: int = 40) -> str:
    """The top functions by self samples and by total samples, from collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return "no samples (was the server busy?)\n"
    lines = [f"{samples} samples at {RATE}/s (on-CPU only)", ""]
    for title, counter in (("self", own), ("total (self + callees)", total)):
        lines += [f"top {top} by {title}:", f"{'%':>6}  {'samples':>8}  function (file:line)"]
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / samples:6.1f}  {count:8d}  {frame}")
        lines.append("")
    return "\n".join(lines)
