"""A stream resumed from an id past the end of the Redis log (newer than any id the log
generated) gets its ``unknown_id`` reset at once, as with the in-memory backend: there is
nothing to wait for, since no instance can be ahead of the log itself."""

from __future__ import annotations

import json
import time

import httpx

from tests.redis.helpers import TOKEN, publish_one, sid
from tests.redis.history import replay
from tests.redis_support import RedisProcess
from tests.support import run_server

PROMPT = 0.5  # seconds; the in-memory backend answers in milliseconds


async def test_a_resume_from_an_id_past_the_log_gets_unknown_id_promptly(
    redis_server: RedisProcess,
) -> None:
    with run_server(backend=redis_server.url, publish_token=TOKEN) as server:
        async with httpx.AsyncClient(timeout=10) as client:
            published = await publish_one(client, server.url, "only")
            assert published.status_code == 201, published.text
            ms, _ = sid(published.json()["id"])
            future = f"{ms + 3_600_000}-0"  # an hour past the log's last id
            started = time.monotonic()
            client.headers["Last-Event-ID"] = future
            resumed = await replay(client, server.url)
            elapsed = time.monotonic() - started
    first = resumed.events[0]
    assert first.event == "reset", resumed.events
    reset = json.loads(first.data)
    assert reset["reason"] == "unknown_id"
    assert reset["requested"] == future
    assert resumed.items == [published.json()["id"]]  # then the whole cache
    assert elapsed < PROMPT, f"the reset came after {elapsed:.2f} s"
