"""The clock the core reads: Unix time in whole milliseconds, injectable for tests."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    """Unix time in milliseconds (the wall clock: ids and expiry times are Unix ms)."""
    return time.time_ns() // 1_000_000
