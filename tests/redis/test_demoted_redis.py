"""The Redis an instance writes to is demoted to a replica (``REPLICAOF``, as a failover
does to an old master), then promoted back: meanwhile publishing answers 503 (Redis says
READONLY, not a server error), and afterwards it works again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from tests.redis.helpers import TOKEN, fast_sync, publish_one, wait_replica_online
from tests.redis_support import RedisProcess
from tests.support import run_server


@dataclass
class Demotion:
    while_replica: list[httpx.Response]
    health_while_replica: httpx.Response
    after: httpx.Response
    health_after: httpx.Response


@pytest.fixture(scope="module")
def demotion(tmp_path_factory: pytest.TempPathFactory) -> Demotion:
    return anyio.run(_demotion, tmp_path_factory.mktemp("demoted"))


async def _demotion(directory: Path) -> Demotion:
    serving = RedisProcess(directory / "serving").start()
    other = RedisProcess(directory / "other").start()
    fast_sync(other)
    try:
        with run_server(backend=serving.url, publish_token=TOKEN) as server:
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await publish_one(client, server.url, 0)).status_code == 201
                with serving.client() as redis:
                    redis.replicaof("127.0.0.1", other.port)
                await anyio.to_thread.run_sync(wait_replica_online, other)
                while_replica = [await publish_one(client, server.url, n) for n in range(3)]
                health_while_replica = await client.get(server.url + "/healthz")
                with serving.client() as redis:
                    redis.replicaof("NO", "ONE")
                after = await publish_one(client, server.url, 4)
                health_after = await client.get(server.url + "/healthz")
    finally:
        serving.kill()
        other.kill()
    return Demotion(while_replica, health_while_replica, after, health_after)


def test_publishing_to_a_demoted_redis_answers_503_with_retry_after(demotion: Demotion) -> None:
    for response in demotion.while_replica:
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1


def test_healthz_is_degraded_while_redis_is_a_replica(demotion: Demotion) -> None:
    assert demotion.health_while_replica.status_code == 503
    assert demotion.health_while_replica.json()["status"] == "degraded"


def test_publishing_works_again_once_redis_is_promoted(demotion: Demotion) -> None:
    assert demotion.after.status_code == 201, demotion.after.text
    assert demotion.health_after.json()["status"] == "ok"
