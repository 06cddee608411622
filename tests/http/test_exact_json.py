"""Exact JSON: every number a producer sends comes back as it was written, in the POST
answer, `GET /items`, `GET /items/{key}` and the stream, also beyond 64 bits and beyond
what a double holds."""

from __future__ import annotations

import re

import httpx
import pytest
from httpx_sse import connect_sse

from tests.http.helpers import events, take, until_live
from tests.support import RunningServer

# Each as orjson would write it, were it able to: the server must give back this text.
NUMBERS = [
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "9223372036854775807",  # 2^63 - 1
    "9223372036854775808",  # 2^63
    "-9223372036854775808",  # -2^63
    "-9223372036854775809",  # -2^63 - 1
    "18446744073709551615",  # 2^64 - 1
    "18446744073709551616",  # 2^64
    "1" + "0" * 400,
    "1.0",
    "-0.0",
    "1e+300",
    "1e400",
    "-1e400",
    "1e-400",
    "0.10000000000000001",
    "3.141592653589793238462643383279",
    "0.1",
    "-2.5e-8",
]
_DATA = re.compile(r',"data":(.*),"created_at":')


def _data_text(item_json: str) -> str:
    found = _DATA.search(item_json)
    assert found is not None, item_json
    return found.group(1)


def _post(client: httpx.Client, server: RunningServer, body: str) -> httpx.Response:
    headers = {**server.auth, "Content-Type": "application/json"}
    return client.post("/items", content=body, headers=headers)


@pytest.mark.parametrize("number", NUMBERS)
def test_a_number_comes_back_exactly_everywhere(
    server: RunningServer, client: httpx.Client, number: str
) -> None:
    data = f'{{"n":{number},"list":[{number}]}}'
    with connect_sse(client, "GET", "/stream") as source:
        stream = events(source.iter_sse())
        until_live(stream)
        posted = _post(client, server, f'{{"key":"k","data":{data}}}')
        assert posted.status_code == 201, posted.text
        assert _data_text(posted.text) == data
        (live,) = take(stream, 1)
    with client.stream("GET", "/stream", params={"limit": 1}) as replay:
        replayed = "".join(replay.iter_lines())
    listed = client.get("/items").text
    one = client.get("/items/k").text
    for text in (posted.text, listed, one, replayed):
        assert _data_text(text) == data
    assert live.id == posted.json()["id"]


def test_a_batch_keeps_every_number_exactly(server: RunningServer, client: httpx.Client) -> None:
    body = "[" + ",".join(f'{{"data":{number}}}' for number in NUMBERS) + "]"
    posted = _post(client, server, body)
    assert posted.status_code == 201, posted.text
    listed = client.get("/items").text
    texts = re.findall(r',"data":(.*?),"created_at":', listed)
    assert texts == NUMBERS
    assert re.findall(r',"data":(.*?),"created_at":', posted.text) == NUMBERS


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_batch_with_a_number_that_is_not_json_stores_nothing(
    server: RunningServer, client: httpx.Client, literal: str
) -> None:
    response = _post(client, server, f'[{{"data":1e400}},{{"data":{literal}}}]')
    assert response.status_code == 400, response.text
    assert client.get("/items").json() == []
