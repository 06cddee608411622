"""The Python client against a real server: publishing, typed errors, subscribing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from tailcast import (
    Event,
    LiveEvent,
    PayloadTooLarge,
    ProblemError,
    ResetError,
    ResetEvent,
    StoredItem,
    TailcastClient,
    Unauthorized,
    Unavailable,
    Unprocessable,
    id_key,
)
from tests.client.helpers import items, wait_until
from tests.support import RunningServer, run_server


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[TailcastClient]:
    async with TailcastClient(server.url, token=server.token) as client:
        yield client


async def test_publish_returns_the_stored_item(client: TailcastClient) -> None:
    stored = await client.publish({"usd": 97000}, key="btc", topic="prices", ttl=60)
    assert (stored.key, stored.topic, stored.data) == ("btc", "prices", {"usd": 97000})
    assert stored.expires_at - stored.created_at == 60_000
    id_key(stored.id)
    assert stored.raw.startswith('{"id":"' + stored.id)


async def test_publish_many_returns_every_item_in_order(server: RunningServer) -> None:
    async with TailcastClient(server.url, token=server.token, batch_size=7) as client:
        stored = await client.publish_many([{"data": n, "topic": "t"} for n in range(20)])
    assert [item.data for item in stored] == list(range(20))
    keys = [item.sort_key for item in stored]
    assert keys == sorted(keys)
    assert len(set(keys)) == 20


async def test_wrong_token_raises_unauthorized(server: RunningServer) -> None:
    async with TailcastClient(server.url, token="not-the-token") as client:
        with pytest.raises(Unauthorized) as caught:
            await client.publish(1)
    assert caught.value.status == 401
    assert caught.value.title == "Unauthorized"
    assert "not the publish token" in caught.value.detail


async def test_body_over_the_limit_raises_payload_too_large() -> None:
    with run_server(max_body_bytes=1000) as server:
        async with TailcastClient(server.url, token=server.token) as client:
            with pytest.raises(PayloadTooLarge) as caught:
                await client.publish("x" * 2000)
    assert caught.value.status == 413
    assert caught.value.detail


async def test_publish_many_splits_a_batch_the_server_finds_too_large() -> None:
    with run_server(max_body_bytes=2000) as server:
        async with TailcastClient(server.url, token=server.token) as client:
            stored = await client.publish_many([{"data": "x" * 100} for _ in range(50)])
    assert len(stored) == 50


async def test_invalid_item_raises_unprocessable_with_the_errors(client: TailcastClient) -> None:
    with pytest.raises(Unprocessable) as caught:
        await client.publish(1, ttl=-1)
    error = caught.value
    assert error.status == 422
    assert [entry["loc"] for entry in error.errors] == [["body", "ttl"]]
    assert "ttl" in error.detail


async def test_refused_batch_tells_what_was_stored_before_it(server: RunningServer) -> None:
    batch = [{"data": n} for n in range(20)]
    batch[12]["ttl"] = -1
    async with TailcastClient(server.url, token=server.token, batch_size=7) as client:
        with pytest.raises(Unprocessable) as caught:
            await client.publish_many(batch)
    assert [item.data for item in caught.value.stored] == list(range(7))
    assert caught.value.errors[0]["loc"][:2] == ["body", 12 - 7]


async def test_unavailable_carries_retry_after() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503,
            headers={"Retry-After": "3", "Content-Type": "application/problem+json"},
            json={"type": "about:blank", "title": "Service Unavailable", "status": 503,
                  "detail": "The service is shutting down; nothing was stored."},
        )  # fmt: skip

    transport = httpx.MockTransport(refuse)
    async with TailcastClient("http://tailcast.test", token="t", transport=transport) as client:
        with pytest.raises(Unavailable) as caught:
            await client.publish(1)
    assert (caught.value.status, caught.value.retry_after) == (503, 3.0)
    assert caught.value.detail.startswith("The service is shutting down")


async def test_replay_then_live(client: TailcastClient) -> None:
    replayed = await client.publish_many([{"data": n} for n in range(3)])
    events: list[Event] = []
    caught_up_at_each: list[bool] = []
    with anyio.fail_after(10):
        async with client.subscribe() as subscription:
            async for event in subscription:
                events.append(event)
                caught_up_at_each.append(subscription.caught_up)
                if isinstance(event, LiveEvent):
                    await client.publish("live one")
                if isinstance(event, StoredItem) and event.data == "live one":
                    break
    assert events[:3] == replayed
    assert events[3] == LiveEvent(cutoff=replayed[-1].id, replayed=3)
    assert isinstance(events[4], StoredItem)
    assert events[4].data == "live one"
    assert len(events) == 5
    assert caught_up_at_each == [False, False, False, True, True]


async def test_limit_ends_the_subscription_after_that_many_items(client: TailcastClient) -> None:
    await client.publish_many([{"data": n} for n in range(5)])
    with anyio.fail_after(10):
        events = [event async for event in client.subscribe(limit=3)]
    assert [event.data for event in items(events)] == [0, 1, 2]
    assert len(events) == 3


async def test_limit_counts_replayed_and_live_items(client: TailcastClient) -> None:
    await client.publish_many([{"data": n} for n in range(2)])
    events: list[Event] = []
    with anyio.fail_after(10):
        async for event in client.subscribe(limit=3):
            events.append(event)
            if isinstance(event, LiveEvent):
                await client.publish_many([{"data": 2}, {"data": 3}])
    assert [item.data for item in items(events)] == [0, 1, 2]


async def test_topics_and_since_narrow_the_stream(client: TailcastClient) -> None:
    stored = await client.publish_many([{"data": n, "topic": "ab"[n % 2]} for n in range(6)])
    with anyio.fail_after(10):
        events = [e async for e in client.subscribe(topics=["a"], since=stored[0].id, limit=2)]
    assert [item.data for item in items(events)] == [2, 4]


async def test_breaking_out_of_the_loop_releases_the_subscription(
    server: RunningServer, client: TailcastClient
) -> None:
    with anyio.fail_after(10):
        async for _ in client.subscribe():
            assert server.subscriber_count() == 1
            break
    await wait_until(lambda: server.subscriber_count() == 0, 5, "the subscription is released")


async def test_closing_the_client_releases_a_subscription_read_elsewhere(
    server: RunningServer,
) -> None:
    client = TailcastClient(server.url)
    ended = anyio.Event()

    async def read() -> None:
        async for _ in client.subscribe():
            pass
        ended.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read)
            await wait_until(lambda: server.subscriber_count() == 1)
            await client.aclose()
            await ended.wait()
    await wait_until(lambda: server.subscriber_count() == 0, 5, "the subscription is released")


async def test_closing_a_subscription_read_elsewhere_ends_it(
    server: RunningServer, client: TailcastClient
) -> None:
    subscription = client.subscribe()
    ended = anyio.Event()

    async def read() -> None:
        async for _ in subscription:
            pass
        ended.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read)
            await wait_until(lambda: server.subscriber_count() == 1)
            await subscription.aclose()
            await ended.wait()
    assert subscription.closed
    await wait_until(lambda: server.subscriber_count() == 0, 5, "the subscription is released")


async def test_reset_is_delivered_in_band(client: TailcastClient) -> None:
    stored = await client.publish(1)
    with anyio.fail_after(10):
        events = [event async for event in client.subscribe(since="1-0", limit=1)]
    # An id from before this server started: its history is gone.
    assert events == [ResetEvent(reason="restarted", requested="1-0", oldest=stored.id), stored]


async def test_reset_raises_when_asked_to(client: TailcastClient) -> None:
    await client.publish(1)
    with anyio.fail_after(10), pytest.raises(ResetError) as caught:
        async for _ in client.subscribe(since="1-0", raise_on_reset=True):
            pass
    assert caught.value.event.reason == "restarted"


async def test_unknown_id_reset_replays_the_whole_cache(client: TailcastClient) -> None:
    await client.publish_many([{"data": n} for n in range(3)])
    future = "99999999999999-0"  # newer than any id the server issued
    with anyio.fail_after(10):
        events = [event async for event in client.subscribe(since=future, limit=3)]
    assert isinstance(events[0], ResetEvent)
    assert events[0].reason == "unknown_id"
    assert [item.data for item in items(events)] == [0, 1, 2]


async def test_reconnect_resumes_after_the_last_item_without_duplicates() -> None:
    # A server that ends the stream, then on the reconnect repeats an item: the client
    # resumes with Last-Event-ID, asks only for the remaining limit, and drops the repeat.
    def frame(n: int) -> str:
        return (
            f'event: item\nid: {n}-0\ndata: {{"id":"{n}-0","key":"k{n}","topic":"t",'
            f'"data":{n},"created_at":{n},"expires_at":{n + 1}}}\n\n'
        )

    requests: list[httpx.Request] = []

    def stream(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        body = "retry: 10\n" + (
            frame(9) + frame(10) if len(requests) == 1 else frame(10) + frame(11)
        )
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, text=body)

    transport = httpx.MockTransport(stream)
    async with TailcastClient("http://tailcast.test", transport=transport) as client:
        with anyio.fail_after(10):
            subscription = client.subscribe(limit=3)
            events = [event async for event in subscription]
    assert [item.id for item in items(events)] == ["9-0", "10-0", "11-0"]
    assert subscription.reconnects == 1
    assert "last-event-id" not in requests[0].headers
    assert requests[1].headers["last-event-id"] == "10-0"
    assert requests[1].url.params["limit"] == "1"


async def test_a_refused_stream_raises_a_problem(client: TailcastClient) -> None:
    with anyio.fail_after(10), pytest.raises(ProblemError) as caught:
        async for _ in client.subscribe(topics=["x" * 300]):
            pass
    assert caught.value.status == 400


async def test_subscribe_with_last_replays_the_newest_items_then_goes_live(
    client: TailcastClient,
) -> None:
    published = await client.publish_many([{"data": n} for n in range(5)])
    events: list[Event] = []
    with anyio.fail_after(10):
        async with client.subscribe(last=2) as subscription:
            async for event in subscription:
                events.append(event)
                if isinstance(event, LiveEvent):
                    break
    assert events == [*published[3:], LiveEvent(cutoff=published[-1].id, replayed=2)]


async def test_last_applies_after_since(client: TailcastClient) -> None:
    # The client sends its start as `since` (the server resumes exactly after a
    # Last-Event-ID, whatever `last` says).
    published = await client.publish_many([{"data": n} for n in range(6)])
    with anyio.fail_after(10):
        async with client.subscribe(since=published[0].id, last=2, limit=2) as subscription:
            assert [event async for event in subscription] == published[4:]


class _Recording(httpx.AsyncHTTPTransport):
    """A transport that notes each request's query and Last-Event-ID header."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.url.query.decode(), request.headers.get("Last-Event-ID")))
        return await super().handle_async_request(request)


async def test_a_reconnect_after_an_item_resumes_exactly_instead_of_asking_for_last(
    server: RunningServer,
) -> None:
    recording = _Recording()
    async with TailcastClient(
        server.url, token=server.token, stream_read_timeout=0.3, transport=recording
    ) as client:
        published = await client.publish_many([{"data": n} for n in range(5)])
        with anyio.fail_after(20):
            async with client.subscribe(last=2) as subscription:
                async for event in subscription:
                    # The stream stays silent: the read timeout drops it, and it reconnects.
                    if subscription.reconnects:
                        break
                    assert isinstance(event, StoredItem | LiveEvent)
                await wait_until(lambda: len(recording.sent) >= 3, what="a reconnect")
    streams = [sent for sent in recording.sent if sent != ("", None)][-2:]
    assert streams == [("last=2", None), ("", published[-1].id)]
