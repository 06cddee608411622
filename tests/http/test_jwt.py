"""With `jwt_secret` set, reads need an HS256 JWT whose `tailcast.subscribe` patterns cover
the topics asked for, and publishing takes the publish token or a JWT whose
`tailcast.publish` patterns cover every posted topic. Bad tokens are 401, uncovered
topics 403, both as problems before any stream starts."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from httpx_sse import connect_sse
from pydantic import ValidationError

from app.settings import Settings
from tests.http.helpers import assert_problem, events, publish, take, until_live
from tests.support import TOKEN, RunningServer, run_server

SECRET = "test-jwt-secret-of-at-least-32-bytes"
CHALLENGE = 'Bearer realm="tailcast"'
INVALID = 'Bearer realm="tailcast", error="invalid_token"'
INSUFFICIENT = 'Bearer realm="tailcast", error="insufficient_scope"'


@pytest.fixture(scope="module", autouse=True)
def backend() -> str:
    """Access control is the HTTP layer's alone: the in-memory backend is enough."""
    return "memory"


@pytest.fixture(scope="module")
def server(http: str) -> Iterator[RunningServer]:
    """One server per HTTP implementation (``http`` sets it through the defaults)."""
    with run_server(backend="memory", jwt_secret=SECRET) as server:
        yield server


def mint(
    subscribe: list[str] | None = None,
    publish: list[str] | None = None,
    *,
    secret: str = SECRET,
    **claims: Any,
) -> str:
    """An HS256 JWT granting these patterns, as an operator would mint one."""
    grants = {"subscribe": subscribe, "publish": publish}
    payload = {"tailcast": {k: v for k, v in grants.items() if v is not None}, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _unsigned(payload: dict[str, Any]) -> str:
    """A token with ``alg: none`` and no signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _access_log() -> Iterator[list[str]]:
    """The access log's lines written in the block (the list fills when it ends)."""
    handler = _Recorder()
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    lines: list[str] = []
    try:
        yield lines
    finally:
        access.setLevel(level)
        access.removeHandler(handler)
        lines += [record.getMessage() for record in handler.records]


# Reads ---------------------------------------------------------------------------------


def test_stream_of_a_granted_topic_replays_and_goes_live(
    server: RunningServer, client: httpx.Client
) -> None:
    stored = publish(client, server.auth, {"topic": "prices.btc", "data": 1})
    headers = bearer(mint(subscribe=["prices.*"]))
    with connect_sse(
        client, "GET", "/stream", params={"topic": "prices.btc"}, headers=headers
    ) as source:
        replayed, _live = until_live(events(source.iter_sse()))
    assert [event.id for event in replayed] == [stored["id"]]


def test_stream_takes_the_token_as_access_token_parameter(
    server: RunningServer, client: httpx.Client
) -> None:
    params = {"topic": "feed", "access_token": mint(subscribe=["feed"])}
    with connect_sse(client, "GET", "/stream", params=params) as source:
        stream = events(source.iter_sse())
        until_live(stream)
        posted = publish(client, server.auth, {"topic": "feed", "data": "live"})
        assert take(stream, 1)[0].id == posted["id"]


def test_stream_of_a_topic_outside_the_grant_is_forbidden(client: httpx.Client) -> None:
    token = mint(subscribe=["prices.*", "news"])
    response = client.get("/stream", params={"topic": ["news", "secrets"]}, headers=bearer(token))
    body = assert_problem(response, 403)
    assert "'secrets'" in body["detail"]
    assert response.headers["www-authenticate"] == INSUFFICIENT


def test_stream_of_every_topic_needs_the_star_pattern(client: httpx.Client) -> None:
    refused = client.get("/stream", headers=bearer(mint(subscribe=["a*", "b*"])))
    assert_problem(refused, 403)
    with connect_sse(
        client, "GET", "/stream", params={"limit": 1}, headers=bearer(mint(subscribe=["*"]))
    ) as source:
        assert source.response.status_code == 200


def test_patterns_treat_only_star_as_special(client: httpx.Client) -> None:
    token = mint(subscribe=["a?c", "[x]", "dot.*"])
    for topic in ("a?c", "[x]", "dot.", "dot.anything.at.all"):
        assert client.get("/items", params={"topic": topic}, headers=bearer(token)).is_success
    for topic in ("abc", "x", "dotx", "a?cd"):
        response = client.get("/items", params={"topic": topic}, headers=bearer(token))
        assert response.status_code == 403, topic


def test_a_backtracking_pattern_is_matched_in_milliseconds(client: httpx.Client) -> None:
    # As a regular expression this pattern backtracks for ever on a long topic (seconds per
    # topic at five stars, and the whole server stalls meanwhile); matched as a pattern, a
    # refusal takes milliseconds and the server stays responsive.
    headers = bearer(mint(subscribe=["*a*a*a*a*a*a*a*a*a*a*a*a*b"]))
    params = {"topic": ["a" * 256, "a" * 255 + "c", "a" * 200]}
    start = time.monotonic()
    refused = client.get("/items", params=params, headers=headers)
    elapsed = time.monotonic() - start
    assert_problem(refused, 403)
    assert elapsed < 1.0
    assert client.get("/healthz", timeout=1).status_code == 200


def test_list_and_get_need_their_topic_granted(server: RunningServer, client: httpx.Client) -> None:
    publish(client, server.auth, {"key": "k", "topic": "open", "data": 1})
    publish(client, server.auth, {"key": "k", "topic": "closed", "data": 2})
    headers = bearer(mint(subscribe=["open"]))

    listed = client.get("/items", params={"topic": "open"}, headers=headers)
    assert [item["topic"] for item in listed.json()] == ["open"]
    assert client.get("/items/k", params={"topic": "open"}, headers=headers).json()["data"] == 1
    assert_problem(client.get("/items", params={"topic": "closed"}, headers=headers), 403)
    assert_problem(client.get("/items", headers=headers), 403)  # every topic
    assert_problem(client.get("/items/k", params={"topic": "closed"}, headers=headers), 403)
    # Without ?topic= the key is looked up in "default", which must be granted too.
    assert_problem(client.get("/items/k", headers=headers), 403)


@pytest.mark.parametrize("path", ["/stream", "/items", "/items/some-key"])
def test_reads_without_a_token_are_unauthorized(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    body = assert_problem(response, 401)
    assert "JWT" in body["detail"]
    assert response.headers["www-authenticate"] == CHALLENGE


_NOW = int(time.time())
_BAD_TOKENS = {
    "expired": (mint(subscribe=["*"], exp=_NOW - 60), "expired"),
    "not yet valid": (mint(subscribe=["*"], nbf=_NOW + 3600), "not valid yet"),
    "malformed": ("not-a-jwt", "malformed"),
    "wrong secret": (mint(subscribe=["*"], secret="another-secret-of-at-least-32-bytes"), "sig"),
    "alg none": (_unsigned({"tailcast": {"subscribe": ["*"]}}), "HS256"),
    "the publish token": (TOKEN, "malformed"),
}


@pytest.mark.parametrize(("token", "says"), _BAD_TOKENS.values(), ids=_BAD_TOKENS.keys())
@pytest.mark.parametrize("via", ["header", "query"])
def test_invalid_tokens_are_unauthorized_and_say_why(
    client: httpx.Client, token: str, says: str, via: str
) -> None:
    if via == "header":
        response = client.get("/stream", headers=bearer(token))
    else:
        response = client.get("/stream", params={"access_token": token})
    body = assert_problem(response, 401)
    assert says in body["detail"]
    assert token not in body["detail"]
    assert response.headers["www-authenticate"] == INVALID


def test_access_token_is_redacted_from_the_access_log(
    server: RunningServer, client: httpx.Client
) -> None:
    token = mint(subscribe=["*"])
    with _access_log() as lines:
        assert client.get("/items", params={"access_token": token, "limit": 1}).is_success
    assert any("access_token=[redacted]&limit=1" in line for line in lines), lines
    assert not any(token in line for line in lines)


@pytest.mark.parametrize(
    "name", ["%61ccess_token", "access_toke%6E", "access%5Ftoken", "%61%63%63%65%73%73_token"]
)
def test_access_token_is_redacted_however_its_name_is_encoded(
    server: RunningServer, client: httpx.Client, name: str
) -> None:
    # The server decodes parameter names, so each of these is the access token.
    token = mint(subscribe=["*"])
    with _access_log() as lines:
        assert client.get(f"/items?limit=1&{name}={token}").is_success
    assert any(f"limit=1&{name}=[redacted]" in line for line in lines), lines
    assert not any(token in line for line in lines)


# Publishing ----------------------------------------------------------------------------


def test_publish_with_a_jwt_covering_every_topic_is_stored(client: httpx.Client) -> None:
    headers = bearer(mint(publish=["jobs.*"]))
    response = client.post(
        "/items",
        json=[{"topic": "jobs.a", "data": 1}, {"topic": "jobs.b", "data": 2}],
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert [item["topic"] for item in response.json()] == ["jobs.a", "jobs.b"]


def test_publish_with_a_jwt_missing_one_topic_is_forbidden_and_stores_nothing(
    server: RunningServer, client: httpx.Client
) -> None:
    headers = bearer(mint(publish=["mine.*"]))
    batch = [{"topic": "mine.a", "data": 1}, {"topic": "theirs", "data": 2}]
    response = client.post("/items", json=batch, headers=headers)
    body = assert_problem(response, 403)
    assert "'theirs'" in body["detail"]
    reader = bearer(mint(subscribe=["*"]))
    listed = client.get("/items", params={"topic": ["mine.a", "theirs"]}, headers=reader)
    assert listed.json() == []


def test_publish_grant_does_not_allow_reading(client: httpx.Client) -> None:
    response = client.get("/items", params={"topic": "x"}, headers=bearer(mint(publish=["*"])))
    assert_problem(response, 403)


def test_the_publish_token_still_publishes_to_any_topic(
    server: RunningServer, client: httpx.Client
) -> None:
    response = client.post("/items", json={"topic": "anything", "data": 1}, headers=server.auth)
    assert response.status_code == 201


def test_publish_with_an_invalid_jwt_is_unauthorized(client: httpx.Client) -> None:
    token = mint(publish=["*"], exp=int(time.time()) - 60)
    response = client.post("/items", json={"data": 1}, headers=bearer(token))
    body = assert_problem(response, 401)
    assert "expired" in body["detail"]
    assert response.headers["www-authenticate"] == INVALID


# What stays open -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/stats", "/metrics"])
def test_operational_routes_stay_open(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_reads_are_open_without_a_jwt_secret() -> None:
    with (
        run_server(backend="memory") as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        publish(client, server.auth, {"key": "k", "data": 1})
        assert client.get("/items").status_code == 200
        assert client.get("/items/k").status_code == 200
        with connect_sse(client, "GET", "/stream") as source:
            assert [e.event for e in take(events(source.iter_sse()), 2)] == ["item", "live"]
        # A JWT, however valid, is not the publish token when no secret is set.
        refused = client.post("/items", json={"data": 1}, headers=bearer(mint(publish=["*"])))
        assert_problem(refused, 401)


def test_a_short_jwt_secret_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(jwt_secret="too-short")
    assert Settings(jwt_secret="").jwt_secret is None  # an empty variable is unset
