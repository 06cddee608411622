"""With `jwt_secret` set, a pattern is read only when the token's subscribe patterns cover
it (one of them matches every topic it matches); GET /topics is read under the rules of
GET /items."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from tests.http.helpers import assert_problem, events, item_ids, publish, until_live
from tests.http.test_jwt import CHALLENGE, INSUFFICIENT, SECRET, bearer, mint
from tests.support import RunningServer, run_server


@pytest.fixture(scope="module", autouse=True)
def backend() -> str:
    """Access control is the HTTP layer's alone: the in-memory backend is enough."""
    return "memory"


@pytest.fixture(scope="module")
def server(http: str) -> Iterator[RunningServer]:
    """One server per HTTP implementation (``http`` sets it through the defaults)."""
    with run_server(backend="memory", jwt_secret=SECRET) as server:
        yield server


def test_a_covered_pattern_is_streamed(server: RunningServer, client: httpx.Client) -> None:
    stored = publish(
        client,
        server.auth,
        [{"topic": "prices.btc", "data": 1}, {"topic": "secrets", "data": 2}],
    )
    token = mint(subscribe=["prices.*", "news"])
    params = {"topic": "prices.b*"}
    with connect_sse(client, "GET", "/stream", params=params, headers=bearer(token)) as source:
        replayed, _live = until_live(events(source.iter_sse()))
    assert item_ids(replayed) == [stored[0]["id"]]


@pytest.mark.parametrize(
    "pattern",
    [
        "prices*",  # matches "prices", which "prices.*" does not
        "*",
        "*.btc",
        "news*",
    ],
)
def test_a_pattern_matching_a_topic_outside_the_grant_is_forbidden(
    client: httpx.Client, pattern: str
) -> None:
    token = mint(subscribe=["prices.*", "news"])
    for path in ("/stream", "/items"):
        response = client.get(path, params={"topic": pattern}, headers=bearer(token))
        body = assert_problem(response, 403)
        assert f"pattern {pattern!r}" in body["detail"]
        assert response.headers["www-authenticate"] == INSUFFICIENT


def test_topics_are_listed_under_the_rules_of_get_items(
    server: RunningServer, client: httpx.Client
) -> None:
    publish(client, server.auth, [{"topic": "open.a", "data": 1}, {"topic": "closed", "data": 2}])
    headers = bearer(mint(subscribe=["open.*"]))
    unauthorized = client.get("/topics")
    assert_problem(unauthorized, 401)
    assert unauthorized.headers["www-authenticate"] == CHALLENGE
    assert_problem(client.get("/topics", headers=headers), 403)  # every topic
    assert_problem(client.get("/topics", params={"topic": "*"}, headers=headers), 403)
    listed = client.get("/topics", params={"topic": "open.*"}, headers=headers)
    assert [entry["topic"] for entry in listed.json()] == ["open.a"]
    everything = client.get("/topics", headers=bearer(mint(subscribe=["*"])))
    assert {"closed", "open.a"} <= {entry["topic"] for entry in everything.json()}
