"""Every error is an RFC 9457 problem (application/problem+json) with a useful detail."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.http.helpers import assert_problem, publish
from tests.support import TOKEN, RunningServer, run_server

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(backend: str, http: str) -> Iterator[httpx.Client]:
    """A client of one server shared by the tests that send only requests it must refuse;
    tests that store anything use their own server. One server per backend and HTTP
    implementation: without the dependencies, pytest would keep the first one's server."""
    with run_server() as running, httpx.Client(base_url=running.url, timeout=5) as client:
        assert client.get("/healthz").json()["backend"] == backend
        yield client


@pytest.fixture
def own_client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def _post_raw(client: httpx.Client, body: bytes, media: str = "application/json") -> httpx.Response:
    return client.post("/items", content=body, headers={**AUTH, "Content-Type": media})


def _nothing_stored(client: httpx.Client) -> bool:
    return bool(client.get("/items").json() == [])


# 400: the body is not JSON


def test_malformed_json_is_400(client: httpx.Client) -> None:
    assert_problem(_post_raw(client, b'{"data": 1'), 400)
    assert _nothing_stored(client)


def test_invalid_utf8_is_400(client: httpx.Client) -> None:
    assert_problem(_post_raw(client, b'{"data": "caf\xe9"}'), 400)
    assert _nothing_stored(client)


def test_empty_body_is_400(client: httpx.Client) -> None:
    assert_problem(_post_raw(client, b""), 400)


# 422: JSON, but not an item or a batch of them

LONG = "x" * 257

SCHEMA_VIOLATIONS: dict[str, Any] = {
    "data_missing": {"key": "k"},
    "unknown_field": {"data": 1, "colour": "red"},
    "unknown_field_in_batch": [{"data": 1}, {"data": 2, "extra": True}],
    "empty_batch": [],
    "scalar_body": 42,
    "string_body": "item",
    "batch_of_scalars": [1, 2],
    "key_with_control_character": {"key": "a\u0000b", "data": 1},
    "key_with_newline": {"key": "a\nb", "data": 1},
    "key_ending_in_newline": {"key": "ab\n", "data": 1},
    "key_with_c1_control": {"key": "a\u0085b", "data": 1},
    "key_with_line_separator": {"key": "a\u2028b", "data": 1},
    "key_too_long": {"key": LONG, "data": 1},
    "key_empty": {"key": "", "data": 1},
    "key_not_a_string": {"key": 7, "data": 1},
    "topic_with_control_character": {"topic": "t\u0007", "data": 1},
    "topic_too_long": {"topic": LONG, "data": 1},
    "topic_empty": {"topic": "", "data": 1},
    "ttl_zero": {"data": 1, "ttl": 0},
    "ttl_negative": {"data": 1, "ttl": -5},
    "ttl_below_min": {"data": 1, "ttl": 0.5},
    "ttl_above_max": {"data": 1, "ttl": 7 * 86400 + 1},
    "ttl_string": {"data": 1, "ttl": "10"},
    "ttl_boolean": {"data": 1, "ttl": True},
}


@pytest.mark.parametrize("payload", SCHEMA_VIOLATIONS.values(), ids=SCHEMA_VIOLATIONS.keys())
def test_schema_violation_is_422(client: httpx.Client, payload: Any) -> None:
    assert_problem(client.post("/items", json=payload, headers=AUTH), 422)
    assert _nothing_stored(client)


def test_validation_problem_lists_each_error_with_its_location(client: httpx.Client) -> None:
    payload = [{"data": 1}, {"data": 2, "ttl": 0}, {"data": 3, "key": LONG}]
    body = assert_problem(client.post("/items", json=payload, headers=AUTH), 422)
    assert [error["loc"] for error in body["errors"]] == [["body", 1, "ttl"], ["body", 2, "key"]]
    assert _nothing_stored(client)


def test_key_and_topic_of_256_printable_characters_are_accepted(
    server: RunningServer, own_client: httpx.Client
) -> None:
    name = "é" * 256
    item = publish(own_client, server.auth, {"key": name, "topic": name, "data": 1})
    assert (item["key"], item["topic"]) == (name, name)


def test_names_may_hold_any_character_but_controls_and_line_separators(
    server: RunningServer, own_client: httpx.Client
) -> None:
    # No-break and ideographic spaces, a zero-width joiner (emoji sequences), private use.
    name = "東京\u3000会議 \u00a0\U0001f468\u200d\U0001f469 \ue000"
    item = publish(own_client, server.auth, {"key": name, "topic": name, "data": 1})
    assert (item["key"], item["topic"]) == (name, name)
    assert own_client.get("/items", params={"topic": name}).json() == [item]


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [129, 253, 254, 600, 1023, 1024, 5000])
def test_data_nested_too_deep_is_refused_not_a_500(client: httpx.Client, depth: int) -> None:
    # Up to 1,023 levels the body parses and the item is refused (422); deeper, the body
    # itself is refused as JSON (400). Never a 500, and nothing is stored.
    response = _post_raw(client, b'{"data": ' + _nested(depth) + b"}")
    body = assert_problem(response, 422 if depth < 1024 else 400)
    assert "depth limit" in body["detail"]
    assert _nothing_stored(client)


def test_a_batch_with_one_item_nested_too_deep_stores_nothing(client: httpx.Client) -> None:
    response = _post_raw(client, b'[{"data": 1}, {"data": ' + _nested(300) + b"}]")
    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["body", 1, "data"]]
    assert _nothing_stored(client)


def test_data_nested_128_deep_is_stored_and_read_back(own_client: httpx.Client) -> None:
    posted = _post_raw(own_client, b'{"key": "deep", "data": ' + _nested(128) + b"}")
    assert posted.status_code == 201, posted.text
    assert own_client.get("/items/deep").json()["data"] == posted.json()["data"]


def test_batch_over_max_is_422() -> None:
    with run_server(max_batch=3) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        assert len(publish(client, server.auth, [{"data": n} for n in range(3)])) == 3
        response = client.post("/items", json=[{"data": n} for n in range(4)], headers=server.auth)
        assert_problem(response, 422)
        assert len(client.get("/items").json()) == 3


def test_ttl_below_a_configured_min_is_422() -> None:
    with run_server(ttl_min=10) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        response = client.post("/items", json={"data": 1, "ttl": 9.5}, headers=server.auth)
        assert_problem(response, 422)


# 413: too large


@contextlib.contextmanager
def small_body_client() -> Iterator[httpx.Client]:
    """A client of a server that takes bodies of at most 100 bytes."""
    with run_server(max_body_bytes=100) as server, httpx.Client(base_url=server.url) as client:
        yield client


def test_body_declared_over_the_limit_is_413() -> None:
    body = b'{"data": "' + b"x" * 200 + b'"}'
    with small_body_client() as client:
        response = _post_raw(client, body)
        assert response.request.headers["content-length"] == str(len(body))
        assert_problem(response, 413)
        assert _nothing_stored(client)


def test_body_at_the_limit_is_accepted() -> None:
    body = b'{"data": "' + b"x" * 88 + b'"}'
    assert len(body) == 100
    with small_body_client() as client:
        assert _post_raw(client, body).status_code == 201


def test_chunked_body_over_the_limit_is_413() -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"data": "'
        for _ in range(10):
            yield b"x" * 50
        yield b'"}'

    with small_body_client() as client:
        response = client.post(
            "/items", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.request.headers
        assert_problem(response, 413)
        assert _nothing_stored(client)


def test_chunked_body_within_the_limit_is_accepted(own_client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"key": "k",'
        yield b' "data": 1}'

    response = own_client.post(
        "/items", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


# A producer that leaves mid-body


@contextlib.contextmanager
def captured_logs(*names: str) -> Iterator[list[logging.LogRecord]]:
    """Every record the named loggers emit, at any level, while the block runs."""
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Capture(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def test_a_producer_leaving_mid_body_is_a_debug_line_not_a_500(
    server: RunningServer, own_client: httpx.Client
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        "POST /items HTTP/1.1\r\nHost: tailcast\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    )
    with captured_logs("tailcast", "uvicorn.error") as records:
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(head.encode() + b'[{"data": "only part of the bo')
        deadline = time.monotonic() + 5
        while len(records) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert own_client.get("/healthz").status_code == 200
    loud = [r for r in records if r.levelno >= logging.WARNING or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]
    left = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert len([m for m in left if "disconnected" in m]) == 3, left
    assert _nothing_stored(own_client)


# 415: not JSON


def test_missing_content_type_is_415(client: httpx.Client) -> None:
    response = client.post("/items", content=b'{"data": 1}', headers=AUTH)
    assert "content-type" not in response.request.headers
    assert_problem(response, 415)


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", "json"])
def test_wrong_content_type_is_415(client: httpx.Client, media: str) -> None:
    assert_problem(_post_raw(client, b'{"data": 1}', media), 415)
    assert _nothing_stored(client)


# 400: malformed query parameters and headers

BAD_IDS = [
    "abc",
    "1",
    "1-",
    "-1",
    "1-2-3",
    "1.5-0",
    "-1-0",
    "1-x",
    "99999999999999999999999-0",
    "18446744073709551616-0",  # 20 digits: ids have at most 19
    "1-\u0661",  # a digit, but not an ASCII one
]


@pytest.mark.parametrize("path", ["/items", "/stream"])
@pytest.mark.parametrize("since", BAD_IDS)
def test_malformed_since_is_400(client: httpx.Client, path: str, since: str) -> None:
    assert_problem(client.get(path, params={"since": since}), 400)


@pytest.mark.parametrize("last_event_id", ["abc", "1-", "1-2-3", "-1-0"])
def test_malformed_last_event_id_is_400(client: httpx.Client, last_event_id: str) -> None:
    assert_problem(client.get("/stream", headers={"Last-Event-ID": last_event_id}), 400)


def test_malformed_last_event_id_is_400_even_with_a_valid_since(client: httpx.Client) -> None:
    response = client.get("/stream", params={"since": "1-0"}, headers={"Last-Event-ID": "x"})
    assert_problem(response, 400)


@pytest.mark.parametrize("path", ["/items", "/stream"])
@pytest.mark.parametrize(
    "limit", ["0", "-1", "abc", "1.5", "", "9223372036854775808", "59710270462512031162433536"]
)
def test_malformed_limit_is_400(client: httpx.Client, path: str, limit: str) -> None:
    assert_problem(client.get(path, params={"limit": limit}), 400)


@pytest.mark.parametrize("path", ["/items", "/stream"])
@pytest.mark.parametrize("topic", ["a\u0001", "a\n", "\u009f", "a\u2029"])
def test_unprintable_topic_filter_is_400(client: httpx.Client, path: str, topic: str) -> None:
    assert_problem(client.get(path, params={"topic": topic}), 400)


def test_empty_topic_on_item_lookup_is_400(client: httpx.Client) -> None:
    assert_problem(client.get("/items/k", params={"topic": ""}), 400)


# 401: not allowed to publish


def test_missing_token_is_401_with_www_authenticate(client: httpx.Client) -> None:
    response = client.post("/items", json={"data": 1})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert _nothing_stored(client)


@pytest.mark.parametrize(
    "authorization", ["Bearer wrong-token", "Basic dGVzdDp0ZXN0", "Bearer", TOKEN]
)
def test_wrong_token_is_401_with_www_authenticate(client: httpx.Client, authorization: str) -> None:
    response = client.post("/items", json={"data": 1}, headers={"Authorization": authorization})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert _nothing_stored(client)


def test_token_is_checked_before_the_body(client: httpx.Client) -> None:
    response = client.post("/items", content=b"not json", headers={"Content-Type": "text/plain"})
    assert_problem(response, 401)


def test_bearer_scheme_is_case_insensitive(own_client: httpx.Client) -> None:
    response = own_client.post(
        "/items", json={"data": 1}, headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert response.status_code == 201, response.text


# 404 and 405


@pytest.mark.parametrize("path", ["/nope", "/items/", "/stream/x", "/healthz/x"])
def test_unknown_route_is_404(client: httpx.Client, path: str) -> None:
    assert_problem(client.get(path), 404)


def test_unknown_item_is_404(server: RunningServer, own_client: httpx.Client) -> None:
    publish(own_client, server.auth, {"key": "k", "topic": "a", "data": 1})
    assert_problem(own_client.get("/items/missing"), 404)
    assert_problem(own_client.get("/items/k", params={"topic": "b"}), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/items", "GET, HEAD, POST"),
        ("PUT", "/items", "GET, HEAD, POST"),
        ("POST", "/stream", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/items/k", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405_with_every_allowed_method(
    client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert_problem(response, 405)
    assert response.headers["allow"] == allowed


def test_publish_during_shutdown_is_503_with_retry_after() -> None:
    with run_server() as server, httpx.Client(base_url=server.url, timeout=5) as client:
        loop = server.server.servers[0].get_loop()
        loop.call_soon_threadsafe(server.service.begin_shutdown)
        assert _eventually_closed(server)
        response = client.post("/items", json={"data": 1}, headers=server.auth)
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) >= 1


def _eventually_closed(server: RunningServer) -> bool:
    deadline = time.monotonic() + 5
    while not server.service.backend.replica.broadcast.closed:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
