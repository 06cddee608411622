"""An asyncio client for Tailcast: publish items, and subscribe with automatic resume.

Built on httpx and httpx-sse only, so it runs wherever they do::

    async with TailcastClient("http://127.0.0.1:8000", token="s3cret") as client:
        stored = await client.publish({"usd": 97000}, key="btc", topic="prices")
        async with client.subscribe(topics=["prices"]) as events:
            async for event in events:
                match event:
                    case StoredItem():
                        print(event.id, event.data)
                    case ResetEvent():
                        ...  # items we needed are gone: rebuild state from what follows
                    case LiveEvent():
                        ...  # the replay is over; what follows is live

A subscription reconnects by itself when the connection drops (a network error, or the
server restarting), resuming with ``Last-Event-ID`` after the last item it delivered;
it never delivers an id twice and counts ``limit`` across reconnects. When the server
lost items the subscriber needed, it says so with a `ResetEvent` (or raises `ResetError`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import weakref
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import anyio
import httpx
from httpx_sse import EventSource, ServerSentEvent

from tailcast.errors import (
    ClientError,
    PayloadTooLarge,
    ProblemError,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from tailcast.models import (
    Event,
    LiveEvent,
    ResetError,
    ResetEvent,
    StoredItem,
    TopicInfo,
    id_key,
)

__all__ = ["Subscription", "TailcastClient", "encode_item"]

logger = logging.getLogger("tailcast.client")

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_BATCH_SIZE = 1000
"""Items per ``POST /items``: the server's default ``max_batch``."""
DEFAULT_BATCH_BYTES = 1_048_576
"""Bytes per ``POST /items`` body: the server's default ``max_body_bytes``."""
DEFAULT_RETRY_MS = 2000
"""Reconnection delay until the server has sent its own ``retry:`` hint."""

_MIN_BACKOFF_STEP = 0.1
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def encode_item(item: Mapping[str, Any]) -> bytes:
    """An item object as compact UTF-8 JSON, as ``POST /items`` takes it.

    Raises ValueError for values JSON cannot represent (NaN, infinities) and TypeError
    for objects it cannot encode.
    """
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date; rare enough to ignore
        return None


def _problem_error(response: httpx.Response) -> ProblemError:
    """The typed error for a refused request, from its problem+json body (read already)."""
    status = response.status_code
    title, detail, type_, errors = response.reason_phrase, "", "about:blank", None
    try:
        body = response.json()
    except ValueError:
        detail = response.text.strip()[:500]
    else:
        if isinstance(body, dict):
            title = str(body.get("title") or title)
            detail = str(body.get("detail") or "")
            type_ = str(body.get("type") or type_)
            if isinstance(body.get("errors"), list):
                errors = [error for error in body["errors"] if isinstance(error, dict)]
    if status == 503:
        return Unavailable(
            status, title, detail, type=type_, errors=errors, retry_after=_retry_after(response)
        )
    kind = {401: Unauthorized, 413: PayloadTooLarge, 422: Unprocessable}.get(status, ProblemError)
    return kind(status, title, detail, type=type_, errors=errors)


class TailcastClient:
    """A client of one Tailcast service. Use it as an async context manager.

    ``token`` is the publish token, sent as a bearer token on ``POST /items``;
    ``subscriber_token``, if given, is sent as a bearer token on reads (streams).
    ``batch_size`` and ``batch_bytes`` bound each batch `publish_many` posts; they should
    not exceed the server's ``max_batch`` and ``max_body_bytes`` (a batch refused with
    413 is split and posted again, but one over ``max_batch`` is refused with 422).
    ``timeout`` bounds each request (connect, write, and reads of answers);
    ``stream_read_timeout`` is how long a stream may stay silent (the server sends a
    heartbeat every 15 s by default) before the connection counts as dropped.
    ``max_backoff`` caps the delay between reconnection attempts, in seconds.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        subscriber_token: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        timeout: float = 30.0,
        stream_read_timeout: float | None = 60.0,
        max_backoff: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if batch_size < 1 or batch_bytes < 1:
            raise ValueError("batch_size and batch_bytes must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.max_backoff = max_backoff
        self._token = token
        self._subscriber_token = subscriber_token
        self._stream_timeout = httpx.Timeout(timeout, read=stream_read_timeout)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "tailcast-client"},
        )
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """Whether `aclose` was called."""
        return self._closed

    async def aclose(self) -> None:
        """End every open subscription and close the connections; idempotent."""
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        await self._http.aclose()

    # Publishing.

    async def publish(
        self,
        data: Any,
        key: str | None = None,
        topic: str | None = None,
        ttl: float | None = None,
    ) -> StoredItem:
        """Publish one item and return it as stored (with its id and times).

        ``topic`` None means the server's default topic, ``key`` None keys the item by its
        own id and ``ttl`` None (seconds) means the server's default ttl. Raises a
        `ProblemError` subclass if the server refuses it.
        """
        item: dict[str, Any] = {"data": data}
        if key is not None:
            item["key"] = key
        if topic is not None:
            item["topic"] = topic
        if ttl is not None:
            item["ttl"] = ttl
        text = await self._post(encode_item(item))
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ClientError(f"the server's answer is not JSON: {text[:200]!r}") from exc
        return StoredItem.from_json(value, text)

    async def publish_many(self, items: Iterable[Mapping[str, Any]]) -> list[StoredItem]:
        """Publish items (objects as ``POST /items`` takes them: ``data``, and optionally
        ``key``, ``topic``, ``ttl``), in batches within ``batch_size`` and ``batch_bytes``.

        Returns the stored items in order. Each batch is stored all or nothing, in order;
        if one is refused, the `ProblemError` raised has ``stored`` set to the items
        stored before it, so the refused batch starts at index ``len(error.stored)``
        (and for a 422 the ``errors``' ``loc`` index counts from there).
        """
        return await self.publish_encoded([encode_item(item) for item in items])

    async def publish_encoded(self, items: Sequence[bytes]) -> list[StoredItem]:
        """`publish_many` for items already encoded as JSON objects (UTF-8 bytes each)."""
        stored: list[StoredItem] = []
        try:
            for batch in self._batches(items):
                await self._post_batch(batch, stored)
        except ProblemError as exc:
            exc.stored = stored
            raise
        return stored

    def _batches(self, items: Sequence[bytes]) -> Iterable[Sequence[bytes]]:
        start, size = 0, 2  # the brackets
        for index, item in enumerate(items):
            grown = size + len(item) + (index > start)
            if index > start and (index - start >= self.batch_size or grown > self.batch_bytes):
                yield items[start:index]
                start, grown = index, 2 + len(item)
            size = grown
        if start < len(items):
            yield items[start:]

    async def _post_batch(self, batch: Sequence[bytes], stored: list[StoredItem]) -> None:
        """Post one batch, splitting it in halves while the server finds it too large."""
        try:
            text = await self._post(b"[" + b",".join(batch) + b"]")
        except PayloadTooLarge:
            if len(batch) == 1:
                raise
            half = len(batch) // 2
            await self._post_batch(batch[:half], stored)
            await self._post_batch(batch[half:], stored)
            return
        try:
            values = json.loads(text)
        except ValueError:
            values = None
        if not isinstance(values, list) or len(values) != len(batch):
            raise ClientError(f"the server's answer is not an array of the items: {text[:200]!r}")
        stored += [StoredItem.from_json(value) for value in values]

    async def _post(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        response = await self._http.post("/items", content=body, headers=headers)
        if response.status_code != 201:
            raise _problem_error(response)
        return response.text

    # Reading.

    async def topics(
        self, topics: Iterable[str] = (), *, after: str | None = None, limit: int | None = None
    ) -> list[TopicInfo]:
        """One page of ``GET /topics``: the topics with cached items or open streams, sorted
        by name, after ``after``, at most ``limit`` (the server's default when None).

        ``topics``: only these names and patterns (all if empty). For the next page, pass
        the last topic's name as ``after``; a page shorter than ``limit`` is the last.
        Sends ``subscriber_token`` as a bearer token. Raises a `ProblemError` subclass if
        the server refuses.
        """
        chosen = [topics] if isinstance(topics, str) else list(topics)
        params: dict[str, Any] = {"topic": chosen}
        if after is not None:
            params["after"] = after
        if limit is not None:
            params["limit"] = limit
        headers = {}
        if self._subscriber_token is not None:
            headers["Authorization"] = f"Bearer {self._subscriber_token}"
        response = await self._http.get("/topics", params=params, headers=headers)
        if response.status_code != 200:
            raise _problem_error(response)
        try:
            values = response.json()
        except ValueError:
            values = None
        if not isinstance(values, list):
            raise ClientError(f"the server's answer is not an array: {response.text[:200]!r}")
        return [TopicInfo.from_json(value) for value in values]

    # Subscribing.

    def subscribe(
        self,
        topics: Iterable[str] = (),
        since: str | None = None,
        limit: int | None = None,
        *,
        last: int | None = None,
        raise_on_reset: bool = False,
        max_attempts: int | None = None,
    ) -> Subscription:
        """A stream of the cached items in id order, then live ones, resumed on drops.

        ``topics``: only these (all if empty); one holding ``*`` is a pattern
        (``prices.*``), which follows every matching topic. ``since``: only items after
        this id.
        ``limit``: end after this many items, counted across reconnects.
        ``last``: replay only the newest this many cached items (after ``since``); once an
        item has arrived, a reconnect resumes after it, skipping nothing.
        ``raise_on_reset``: raise `ResetError` instead of yielding a `ResetEvent`.
        ``max_attempts``: give up after this many connection attempts in a row fail,
        raising the last error (None: keep trying).

        Iterate the result with ``async for``. Leaving the loop early releases the
        connection once the subscription is garbage (at once in CPython); use it as an
        ``async with`` block, or call `Subscription.aclose`, to release it explicitly.
        Raises ValueError for a malformed ``since``, or a ``limit`` or ``last`` below 1.
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        if last is not None and last < 1:
            raise ValueError("last must be at least 1")
        if since is not None:
            id_key(since)
        chosen = (topics,) if isinstance(topics, str) else tuple(topics)  # "a" is one topic
        stream = _Stream(self, chosen, since, limit, raise_on_reset, max_attempts, last)
        subscription = Subscription(stream)
        self._subscriptions.add(subscription)
        return subscription

    def _read_headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self._subscriber_token is not None:
            headers["Authorization"] = f"Bearer {self._subscriber_token}"
        return headers


class Subscription:
    """One subscriber's events: `StoredItem`, `ResetEvent` and `LiveEvent`.

    Iterate it with ``async for``; it reconnects by itself (see `TailcastClient.subscribe`).
    """

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream
        # The generator refers to the stream's state, never to this object: when the
        # caller drops the subscription (e.g. leaves its loop) nothing keeps it alive, and
        # the event loop's async-generator finalizer closes the connection at once.
        self._events = stream.run()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._stream.closed:
            await self.aclose()  # in case it was closed while being iterated elsewhere
            raise StopAsyncIteration
        return await self._events.__anext__()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End the subscription and close its connection; idempotent."""
        self._stream.closed = True
        try:
            await self._events.aclose()
        except RuntimeError:  # being iterated in another task right now: cut its connection
            await self._stream.disconnect()

    @property
    def closed(self) -> bool:
        """Whether the subscription ended (closed, limit reached, or failed)."""
        return self._stream.closed

    @property
    def caught_up(self) -> bool:
        """True from a `LiveEvent` until the connection drops: after a reconnect the resumed
        stream replays what was missed, then delivers `LiveEvent` again."""
        return self._stream.caught_up

    @property
    def last_id(self) -> str | None:
        """The id of the last item delivered (``since`` until one is): where a reconnect
        resumes."""
        return self._stream.last_id

    @property
    def delivered(self) -> int:
        """Items delivered so far (what ``limit`` counts)."""
        return self._stream.delivered

    @property
    def reconnects(self) -> int:
        """How many times the subscription reconnected."""
        return self._stream.reconnects

    @property
    def retry_ms(self) -> int | None:
        """The server's reconnection hint in ms (None until it sent one)."""
        return self._stream.retry_ms


class _Stream:
    """A subscription's state and its reconnecting event generator."""

    def __init__(
        self,
        client: TailcastClient,
        topics: tuple[str, ...],
        since: str | None,
        limit: int | None,
        raise_on_reset: bool,
        max_attempts: int | None,
        last: int | None = None,
    ) -> None:
        self.topics = topics
        self.limit = limit
        # Until the first item arrives: a reconnect after one resumes exactly instead.
        self._last = last
        self.caught_up = False
        self.last_id = since
        self.delivered = 0
        self.reconnects = 0
        self.retry_ms: int | None = None
        self.closed = False
        self._response: httpx.Response | None = None
        self._client = client
        self._raise_on_reset = raise_on_reset
        self._max_attempts = max_attempts
        self._last_key = None if since is None else id_key(since)

    def _remaining(self) -> int | None:
        return None if self.limit is None else self.limit - self.delivered

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.topics:
            params["topic"] = list(self.topics)
        remaining = self._remaining()
        if remaining is not None:
            params["limit"] = remaining
        if self._last is not None:
            # The server resumes exactly after a Last-Event-ID, ignoring `last`: send the
            # start as `since` until an item has arrived.
            params["last"] = self._last
            if self.last_id is not None:
                params["since"] = self.last_id
        return params

    async def run(self) -> AsyncGenerator[Event, None]:
        """The events, reconnecting after drops until the limit, a close or an error."""
        failures = 0
        try:
            while self._remaining() != 0 and not self._ended():
                headers = self._client._read_headers()
                if self.last_id is not None and self._last is None:
                    headers["Last-Event-ID"] = self.last_id
                wait_at_least = 0.0
                error: Exception | None = None
                try:
                    async with self._client._http.stream(
                        "GET",
                        "/stream",
                        params=self._params(),
                        headers=headers,
                        timeout=self._client._stream_timeout,
                    ) as response:
                        self._response = response
                        if self.closed:  # closed from another task while connecting
                            return
                        if response.status_code != 200:
                            await response.aread()
                            error = _problem_error(response)
                            if response.status_code not in _RETRY_STATUSES:
                                raise error
                            wait_at_least = _retry_after(response) or 0.0
                        else:
                            source = EventSource(response).aiter_sse()
                            async with contextlib.aclosing(source) as sse_events:
                                async for sse in sse_events:
                                    failures = 0
                                    event = self._accept(sse)
                                    if event is not None:
                                        yield event
                                        if self._remaining() == 0 or self.closed:
                                            return
                except httpx.TransportError as exc:
                    error = exc
                finally:
                    self._response = None
                if self._ended():
                    return
                self.caught_up = False
                failures += 1
                if self._max_attempts is not None and failures >= self._max_attempts:
                    raise error or ClientError("the server ended the stream")
                delay = max(wait_at_least, self._backoff(failures))
                logger.warning(
                    "stream from %s %s; reconnecting in %.1f s%s",
                    self._client.base_url,
                    "ended" if error is None else f"failed ({_describe(error)})",
                    delay,
                    "" if self.last_id is None else f", resuming after {self.last_id}",
                )
                await anyio.sleep(delay)
                self.reconnects += 1
        finally:
            self.closed = True

    def _ended(self) -> bool:
        return self.closed or self._client.closed

    async def disconnect(self) -> None:
        """Close the current connection, if any (the reader then sees the stream end)."""
        if self._response is not None:
            await self._response.aclose()

    def _backoff(self, failures: int) -> float:
        """Between the server's retry hint and an exponentially growing ceiling."""
        base = (self.retry_ms if self.retry_ms is not None else DEFAULT_RETRY_MS) / 1000
        growth = max(base, _MIN_BACKOFF_STEP) * 2**failures  # grows even from a hint of 0
        ceiling = max(base, min(self._client.max_backoff, growth))
        return random.uniform(base, ceiling)

    def _accept(self, sse: ServerSentEvent) -> Event | None:
        """The event to deliver for ``sse``, or None (a duplicate, a heartbeat artefact)."""
        if sse.retry is not None:
            self.retry_ms = sse.retry
        if sse.event == "item":
            item = StoredItem.from_json(_decode(sse.data), sse.data)
            key = item.sort_key
            if self._last_key is not None and key <= self._last_key:
                logger.debug("dropping %s: not after %s, delivered already", item.id, self.last_id)
                return None
            self._last_key = key
            self.last_id = item.id
            self.delivered += 1
            self._last = None
            return item
        if sse.event == "reset":
            value = _decode_object(sse.data)
            reset = ResetEvent(
                str(value.get("reason")), value.get("requested"), value.get("oldest")
            )
            if reset.reason == "unknown_id":
                # The server never issued our id (another server's, or its clock went back):
                # its whole cache follows, with ids that are not comparable to ours.
                self._last_key = None
            if self._raise_on_reset:
                raise ResetError(reset)
            return reset
        if sse.event == "live":
            self.caught_up = True
            value = _decode_object(sse.data)
            replayed = value.get("replayed")
            return LiveEvent(value.get("cutoff"), replayed if isinstance(replayed, int) else None)
        return None  # heartbeat artefacts and events this client does not know


def _decode(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ClientError(f"the server sent an event whose data is not JSON: {data!r}") from exc


def _decode_object(data: str) -> dict[str, Any]:
    value = _decode(data)
    if not isinstance(value, dict):
        raise ClientError(f"the server sent an event whose data is not an object: {data!r}")
    return value


def _describe(error: Exception) -> str:
    text = str(error)
    if isinstance(error, ProblemError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
