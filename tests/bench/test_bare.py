"""The bare uvicorn app, the ceiling for single-item POSTs: it takes the load client's
publishes as Tailcast does, answering 201 with a small JSON object."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bench import servers
from bench.http import HttpConnection


async def test_the_bare_app_answers_a_publish_with_201_and_json(tmp_path: Path) -> None:
    async with asyncio.timeout(20), servers.bare(tmp_path) as server:
        conn = await HttpConnection.open(server.wire.host, server.wire.port)
        try:
            answers = [await conn.request(server.wire.publish("c", seq)) for seq in range(3)]
        finally:
            conn.close()
    assert [status for status, _ in answers] == [201] * 3
    assert all("id" in json.loads(body) for _, body in answers)
    assert server.version.startswith("bare uvicorn")


async def test_the_bare_app_runs_with_two_workers_for_the_workers_ceiling(tmp_path: Path) -> None:
    async with asyncio.timeout(40), servers.bare(tmp_path, workers=2) as server:
        workers = [pid for pid in server.pids() if servers.is_worker(pid)]
        conn = await HttpConnection.open(server.wire.host, server.wire.port)
        try:
            status, _ = await conn.request(server.wire.publish("c", 0))
        finally:
            conn.close()
    assert len(workers) == 2
    assert status == 201
    assert server.label == "bare-w2"
