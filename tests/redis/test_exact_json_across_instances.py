"""Exact JSON across instances of one Redis log: an instance that loads the items from
the log gives back every number as it was written to another instance."""

from __future__ import annotations

import re

import httpx

from tests.http.test_exact_json import NUMBERS
from tests.redis_support import RedisProcess
from tests.support import run_server


def test_another_instance_of_a_redis_log_gives_the_same_numbers(
    redis_server: RedisProcess,
) -> None:
    shared = {"backend": redis_server.url}
    body = "[" + ",".join(f'{{"data":{number}}}' for number in NUMBERS) + "]"
    with run_server(**shared) as first, httpx.Client(base_url=first.url, timeout=5) as client:
        headers = {"Content-Type": "application/json", **first.auth}
        assert client.post("/items", content=body, headers=headers).status_code == 201
        with (
            run_server(**shared) as later,
            httpx.Client(base_url=later.url, timeout=5) as reader,
        ):
            listed = reader.get("/items").text
    assert re.findall(r',"data":(.*?),"created_at":', listed) == NUMBERS
