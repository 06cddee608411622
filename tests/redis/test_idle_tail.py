"""An idle instance's tail waits in XREAD BLOCK: it does not busy-loop on a log that
holds nothing but its epoch marker."""

from __future__ import annotations

import time

from tests.redis_support import RedisProcess
from tests.support import run_server


def _xread_calls(redis_server: RedisProcess) -> int:
    with redis_server.client() as client:
        stats: dict[str, dict[str, int]] = client.info("commandstats")
    return stats.get("cmdstat_xread", {}).get("calls", 0)


def test_an_idle_instance_on_an_empty_log_does_not_spin(redis_server: RedisProcess) -> None:
    with run_server(backend=redis_server.url):
        time.sleep(0.2)  # past start-up
        before = _xread_calls(redis_server)
        time.sleep(1.0)
        calls = _xread_calls(redis_server) - before
    # One XREAD BLOCK waits 5 s; a handful of calls a second would already be a bug.
    assert calls <= 3, f"{calls} XREAD calls in 1 s on an idle log"
