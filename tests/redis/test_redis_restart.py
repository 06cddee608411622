"""Redis dies (SIGKILL, no persistence) and comes back empty on the same port while an
instance serves: publishing fails fast with 503 meanwhile, streams stay up, and
afterwards the log goes on in a new epoch with ids past every earlier one."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from tests.redis.helpers import (
    TOKEN,
    Subscriber,
    eventually,
    publish_one,
    sid,
    strictly_increasing,
)
from tests.redis_support import RedisProcess
from tests.support import RunningServer, run_server

BEFORE = 20
AFTER = 20


@dataclass
class Outage:
    """What the test saw across the restart."""

    before: list[str]  # ids acknowledged before Redis died
    after: list[str]  # ids acknowledged after it came back
    down_publishes: list[httpx.Response]
    down_health: httpx.Response
    health_after: httpx.Response
    heartbeats_while_down: int
    streamer: Subscriber  # streaming since before the outage, until the end
    resumer: Subscriber  # connected at the end with an id from before the outage


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Outage:
    """Run one instance through one Redis restart (once for the module's tests)."""
    return anyio.run(_outage, tmp_path_factory.mktemp("redis"))


async def _outage(redis_dir: Path) -> Outage:
    first = RedisProcess(redis_dir).start()
    second: RedisProcess | None = None
    try:
        with run_server(backend=first.url, heartbeat=0.2, publish_token=TOKEN) as server:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client,
                anyio.create_task_group() as readers,
            ):
                streamer = Subscriber([server.url])
                readers.start_soon(streamer.run, client)
                with anyio.fail_after(10):
                    await streamer.live.wait()
                before = [await _publish(client, server.url, n) for n in range(BEFORE)]
                await eventually(lambda: streamer.items == before, within=5)

                first.kill()
                down_since = time.monotonic()
                down_publishes = [
                    await publish_one(client, server.url, {"lost": n}) for n in range(3)
                ]
                await eventually(
                    lambda: _healthz(server).status_code == 503,
                    within=10,
                    describe=lambda: _healthz(server).text,
                )
                down_health = _healthz(server)
                await anyio.sleep(max(0.0, 1.5 - (time.monotonic() - down_since)))
                heartbeats = sum(1 for t in streamer.heartbeats if t > down_since)

                second = RedisProcess(redis_dir, port=first.port).start()
                after = [await _publish_retrying(client, server.url, BEFORE)]
                after += [
                    await _publish(client, server.url, n) for n in range(BEFORE + 1, BEFORE + AFTER)
                ]
                health_after = _healthz(server)
                resumer = Subscriber([server.url], since=before[5])
                readers.start_soon(resumer.run, client)
                expected = before + after
                await eventually(
                    lambda: len(streamer.items) >= len(expected) and len(resumer.items) >= AFTER,
                    within=10,
                    describe=lambda: f"streamer {streamer.items}, resumer {resumer.items}",
                )
                await anyio.sleep(0.3)  # room for a duplicate to show up
                readers.cancel_scope.cancel()
    finally:
        first.kill()
        if second is not None:
            second.kill()
    return Outage(
        before,
        after,
        down_publishes,
        down_health,
        health_after,
        heartbeats,
        streamer,
        resumer,
    )


def _healthz(server: RunningServer) -> httpx.Response:
    return httpx.get(server.url + "/healthz", timeout=5)


async def _publish(client: httpx.AsyncClient, url: str, n: int) -> str:
    response = await publish_one(client, url, n)
    assert response.status_code == 201, response.text
    id: str = response.json()["id"]
    return id


async def _publish_retrying(client: httpx.AsyncClient, url: str, n: int) -> str:
    """Publish, retrying 503s (Redis coming back) for at most 15 s."""
    deadline = time.monotonic() + 15
    while True:
        response = await publish_one(client, url, n)
        if response.status_code == 201:
            id: str = response.json()["id"]
            return id
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, "publishing did not recover within 15 s"
        await anyio.sleep(0.1)


def test_publish_fails_with_503_and_retry_after_while_redis_is_down(outage: Outage) -> None:
    for response in outage.down_publishes:
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["content-type"].startswith("application/problem+json")


def test_healthz_is_degraded_while_redis_is_down_and_ok_after(outage: Outage) -> None:
    assert outage.down_health.status_code == 503
    assert outage.down_health.json()["status"] == "degraded"
    assert outage.health_after.status_code == 200
    assert outage.health_after.json()["status"] == "ok"


def test_open_streams_stay_up_with_heartbeats_while_redis_is_down(outage: Outage) -> None:
    assert outage.heartbeats_while_down >= 3  # heartbeat=0.2 over >= 1.5 s
    assert outage.streamer.connections == 1


def test_a_stream_open_across_the_restart_gets_every_item_once_in_order(
    outage: Outage,
) -> None:
    assert outage.streamer.items == outage.before + outage.after
    assert outage.streamer.connections == 1


def test_ids_after_the_restart_are_past_every_id_before(outage: Outage) -> None:
    assert strictly_increasing(outage.before + outage.after)
    assert sid(outage.after[0]) > sid(outage.before[-1])


def test_resuming_from_an_id_before_the_restart_gets_reset_restarted(outage: Outage) -> None:
    first = outage.resumer.events[0]
    assert first.event == "reset", outage.resumer.events[:3]
    reset = json.loads(first.data)
    assert reset["reason"] == "restarted"
    assert reset["requested"] == outage.before[5]
    # the replay after it is the whole cache: everything since the restart
    assert outage.resumer.items == outage.after
