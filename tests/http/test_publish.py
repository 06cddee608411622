"""Publishing, reading back and the latest-item-per-key cache, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from app import __version__
from tests.http.helpers import assert_problem, publish, publish_many, sid, strictly_increasing
from tests.support import RunningServer, run_server


def test_posted_item_is_returned_with_id_and_timestamps(
    server: RunningServer, client: httpx.Client
) -> None:
    before = int(time.time() * 1000)
    item = publish(client, server.auth, {"key": "k", "topic": "t", "data": {"a": [1, 2]}})
    assert set(item) == {"id", "key", "topic", "data", "created_at", "expires_at"}
    assert (item["key"], item["topic"], item["data"]) == ("k", "t", {"a": [1, 2]})
    assert sid(item["id"])[0] == item["created_at"]
    assert before <= item["created_at"] <= int(time.time() * 1000)


def test_item_without_key_or_topic_is_keyed_by_its_id_in_the_default_topic(
    server: RunningServer, client: httpx.Client
) -> None:
    item = publish(client, server.auth, {"data": 1})
    assert (item["key"], item["topic"]) == (item["id"], "default")


@pytest.mark.parametrize("data", [None, 0, "text", [1, [2]], {"nested": {"x": None}}])
def test_data_may_be_any_json_value(server: RunningServer, client: httpx.Client, data: Any) -> None:
    item = publish(client, server.auth, {"key": "k", "data": data})
    assert item["data"] == data
    assert client.get("/items/k").json()["data"] == data


def test_item_without_ttl_gets_the_default_ttl() -> None:
    with run_server(ttl_default=60) as server, httpx.Client(base_url=server.url) as client:
        item = publish(client, server.auth, {"data": 1})
        assert item["expires_at"] - item["created_at"] == 60_000


def test_item_ttl_sets_its_expiry(server: RunningServer, client: httpx.Client) -> None:
    item = publish(client, server.auth, {"data": 1, "ttl": 2.5})
    assert item["expires_at"] - item["created_at"] == 2500


def test_json_media_type_with_parameters_or_json_suffix_is_accepted(
    server: RunningServer, client: httpx.Client
) -> None:
    for media in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post(
            "/items", content=b'{"data": 1}', headers={**server.auth, "Content-Type": media}
        )
        assert response.status_code == 201, (media, response.text)


def test_ids_strictly_increase_across_posts(server: RunningServer, client: httpx.Client) -> None:
    ids = [publish(client, server.auth, {"data": n})["id"] for n in range(50)]
    assert strictly_increasing(ids)


def test_batch_gets_consecutive_ids_in_posted_order(
    server: RunningServer, client: httpx.Client
) -> None:
    first = publish(client, server.auth, {"data": "before"})
    batch = publish_many(client, server.auth, 20)
    last = publish(client, server.auth, {"data": "after"})

    assert [item["data"] for item in batch] == list(range(20))
    listed = client.get("/items").json()
    # The batch is one unbroken run of the log, in the order it was posted.
    assert [item["id"] for item in listed] == [
        first["id"],
        *[item["id"] for item in batch],
        last["id"],
    ]
    assert strictly_increasing([item["id"] for item in listed])


def test_batch_of_one_is_returned_as_an_array(server: RunningServer, client: httpx.Client) -> None:
    stored = publish(client, server.auth, [{"data": 1}])
    assert isinstance(stored, list)
    assert len(stored) == 1


def test_batch_is_all_or_nothing(server: RunningServer, client: httpx.Client) -> None:
    response = client.post(
        "/items",
        json=[{"key": "a", "data": 1}, {"key": "b", "data": 2, "ttl": -1}, {"data": 3}],
        headers=server.auth,
    )
    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["body", 1, "ttl"]]
    assert client.get("/items").json() == []
    assert client.get("/healthz").json()["items"] == 0


def test_newer_item_replaces_the_older_one_with_the_same_key(
    server: RunningServer, client: httpx.Client
) -> None:
    publish(client, server.auth, {"key": "k", "data": "old"})
    other = publish(client, server.auth, {"key": "other", "data": "x"})
    newer = publish(client, server.auth, {"key": "k", "data": "new"})

    assert client.get("/items").json() == [other, newer]


def test_same_key_in_two_topics_is_two_items(server: RunningServer, client: httpx.Client) -> None:
    a = publish(client, server.auth, {"key": "k", "topic": "a", "data": 1})
    b = publish(client, server.auth, {"key": "k", "topic": "b", "data": 2})

    assert client.get("/items").json() == [a, b]
    assert client.get("/items/k", params={"topic": "a"}).json() == a
    assert client.get("/items/k", params={"topic": "b"}).json() == b


def test_a_key_spelled_like_an_id_never_replaces_the_item_without_a_key(
    server: RunningServer, client: httpx.Client
) -> None:
    keyless = publish(client, server.auth, {"topic": "t", "data": "keyed by its id"})
    keyed = publish(client, server.auth, {"topic": "t", "key": keyless["id"], "data": "keyed"})
    listed = client.get("/items", params={"topic": "t"}).json()
    assert [item["id"] for item in listed] == [keyless["id"], keyed["id"]]
    # By key, the keyed item comes first; the other is still there, read by its id above.
    assert client.get(f"/items/{keyless['id']}", params={"topic": "t"}).json() == keyed


def test_an_item_without_a_key_never_replaces_a_key_spelled_like_its_id(
    server: RunningServer, client: httpx.Client
) -> None:
    # Keys spelled like the ids of the next second: an item published without a key soon
    # gets one of those ids.
    now = sid(publish(client, server.auth, {"data": "clock"})["id"])[0]
    keys = [f"{ms}-0" for ms in range(now + 1, now + 1001)]
    keyed = publish(client, server.auth, [{"topic": "t", "key": k, "data": k} for k in keys])
    deadline = time.monotonic() + 5
    while True:
        keyless = publish(client, server.auth, {"topic": "t", "data": "keyed by its id"})
        if keyless["id"] in keys or time.monotonic() > deadline:
            break
    assert keyless["id"] in keys, "no item got an id spelled like a key"
    listed = client.get("/items", params={"topic": "t"}).json()
    assert len(listed) == len(keyed) + 1
    assert {item["key"] for item in listed if item["id"] != keyless["id"]} == set(keys)
    assert (
        client.get(f"/items/{keyless['id']}", params={"topic": "t"}).json()["data"]
        == (keyless["id"])
    )


def test_an_item_without_a_key_is_read_by_its_id(
    server: RunningServer, client: httpx.Client
) -> None:
    keyless = publish(client, server.auth, {"topic": "t", "data": 1})
    assert client.get(f"/items/{keyless['id']}", params={"topic": "t"}).json() == keyless
    ms, seq = keyless["id"].split("-")
    assert_problem(client.get(f"/items/0{ms}-{seq}", params={"topic": "t"}), 404)


def test_get_item_by_key_defaults_to_the_default_topic(
    server: RunningServer, client: httpx.Client
) -> None:
    item = publish(client, server.auth, {"key": "k", "data": 1})
    publish(client, server.auth, {"key": "k", "topic": "elsewhere", "data": 2})
    assert client.get("/items/k").json() == item


def test_get_item_returns_the_latest_for_its_key(
    server: RunningServer, client: httpx.Client
) -> None:
    publish(client, server.auth, {"key": "k", "topic": "t", "data": 1})
    latest = publish(client, server.auth, {"key": "k", "topic": "t", "data": 2})
    response = client.get("/items/k", params={"topic": "t"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == latest


def test_keys_with_slashes_and_spaces_are_addressable(
    server: RunningServer, client: httpx.Client
) -> None:
    item = publish(client, server.auth, {"key": "a/b c/ü", "data": 1})
    assert client.get("/items/a%2Fb%20c%2F%C3%BC").json() == item
    assert client.get("/items/a/b c/ü").json() == item


def test_list_items_returns_the_first_n_after_since(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 10)]
    listed = client.get("/items", params={"since": ids[3], "limit": 4}).json()
    assert [item["id"] for item in listed] == ids[4:8]


def test_list_items_with_empty_since_lists_everything(
    server: RunningServer, client: httpx.Client
) -> None:
    ids = [item["id"] for item in publish_many(client, server.auth, 3)]
    assert [item["id"] for item in client.get("/items?since=").json()] == ids


def test_list_items_filters_by_topics(server: RunningServer, client: httpx.Client) -> None:
    a = publish(client, server.auth, {"topic": "a", "data": 1})
    publish(client, server.auth, {"topic": "b", "data": 2})
    c = publish(client, server.auth, {"topic": "c", "data": 3})
    listed = client.get("/items", params={"topic": ["a", "c"]}).json()
    assert listed == [a, c]


def test_expired_item_is_no_longer_served() -> None:
    with run_server(ttl_min=0.05) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        publish(client, server.auth, {"key": "short", "data": 1, "ttl": 0.1})
        kept = publish(client, server.auth, {"key": "kept", "data": 2})
        deadline = time.monotonic() + 5
        while client.get("/items/short").status_code != 404:
            assert time.monotonic() < deadline, "item did not expire"
            time.sleep(0.02)
        assert client.get("/items").json() == [kept]


def test_healthz_reports_version_backend_and_counts(
    server: RunningServer, client: httpx.Client, backend: str
) -> None:
    publish_many(client, server.auth, 3)
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["backend"] == backend
    assert body["items"] == 3
    assert body["bytes"] > 0
    assert body["subscribers"] == 0
