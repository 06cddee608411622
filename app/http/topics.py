"""The `GET /topics` response: every topic with cached items or open subscribers, by name.

One entry per topic: what the cache holds of it and how many of this instance's streams
receive it (by name, by pattern, or on every topic). The names are kept sorted between
requests and sorted again only after a topic came or went, so a page costs a bisection
and the entries it walks: with a ``topic`` filter only the names that could match are
walked (a pattern's text before its first star bounds them), not every topic.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from app.http.auth import authorize_read
from app.http.routes import AccessTokenQuery, TopicQuery, _limit_topics, _parse_topics, _problems
from app.http.schemas import NAME_MAX
from app.http.service import Service
from streaming import Replica
from streaming.patterns import STAR, is_pattern, topic_filter

router = APIRouter()

TOPICS_LIMIT_DEFAULT = 100
TOPICS_LIMIT_MAX = 1000


class TopicOut(BaseModel):
    """One topic: what the cache holds of it, and the streams that receive it."""

    topic: str
    items: int = Field(description="Cached items on the topic.")
    bytes: int = Field(description="Bytes of the cached items, encoded.")
    newest: str | None = Field(description="Id of the newest cached item; null if none.")
    subscribers: int = Field(
        description="This instance's open streams that receive the topic: by name, by a "
        "pattern that matches it, or on every topic."
    )


class _Directory:
    """The topic names known to a replica (cached or subscribed to), kept sorted."""

    __slots__ = ("_names", "_version")

    def __init__(self) -> None:
        self._version: tuple[int, int] | None = None
        self._names: list[str] = []

    def sorted_names(self, replica: Replica) -> list[str]:
        version = (replica.cache.topics_version, replica.presence.version)
        if version != self._version:
            self._names = sorted({*replica.cache.topics(), *replica.presence.names()})
            self._version = version
        return self._names


def _directory(request: Request) -> _Directory:
    """The app's directory (one per app, so one per replica)."""
    state = request.app.state
    directory: _Directory | None = getattr(state, "topic_directory", None)
    if directory is None:
        directory = state.topic_directory = _Directory()
    return directory


def _ranges(names: list[str], chosen: frozenset[str], after: str) -> Iterator[Iterator[str]]:
    """Runs of ``names`` past ``after`` that may hold the chosen topics, each sorted."""
    prefixes = sorted({topic.split(STAR, 1)[0] for topic in chosen if is_pattern(topic)})
    if not chosen or "" in prefixes:
        yield iter(names[bisect_right(names, after) :])
        return
    exact = sorted(topic for topic in chosen if not is_pattern(topic) and topic > after)
    yield iter(exact)
    for prefix in prefixes:
        yield _run(names, prefix, after)


def _run(names: list[str], prefix: str, after: str) -> Iterator[str]:
    start = bisect_right(names, after) if after >= prefix else bisect_left(names, prefix)
    for at in range(start, len(names)):
        name = names[at]
        if not name.startswith(prefix):
            return
        yield name


def _page(
    replica: Replica, names: list[str], chosen: frozenset[str], after: str, limit: int
) -> bytes:
    matches = topic_filter(chosen).matches if chosen else None
    cache, presence = replica.cache, replica.presence
    entries: list[bytes] = []
    previous = None
    for topic in heapq.merge(*_ranges(names, chosen, after)):
        if topic == previous or (matches is not None and not matches(topic)):
            continue
        previous = topic
        stats = cache.topic_stats(topic)
        subscribers = presence.subscribers(topic)
        if not (stats.items or subscribers):
            continue  # subscribed to by name once, not now (the names are sorted lazily)
        newest = None if stats.newest is None else str(stats.newest)
        entries.append(
            orjson.dumps(
                {
                    "topic": topic,
                    "items": stats.items,
                    "bytes": stats.bytes,
                    "newest": newest,
                    "subscribers": subscribers,
                }
            )
        )
        if len(entries) == limit:
            break
    return b"[" + b",".join(entries) + b"]"


@router.get(
    "/topics",
    summary="Topics with cached items or open streams, sorted by name",
    response_model=list[TopicOut],
    responses=_problems(400, 401, 403),
    openapi_extra={"security": [{}, {"jwt": []}]},
)
async def list_topics(
    request: Request,
    topic: TopicQuery = [],  # noqa: B006 - FastAPI copies defaults
    after: Annotated[
        str | None,
        Query(max_length=NAME_MAX, description="Only topics sorted after this one (paging)."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=TOPICS_LIMIT_MAX, description="At most this many topics.")
    ] = TOPICS_LIMIT_DEFAULT,
    access_token: AccessTokenQuery = None,
) -> Response:
    service: Service = request.app.state.tailcast
    _limit_topics(topic, service.settings)
    chosen = _parse_topics(topic)
    authorize_read(request, service.settings, chosen, access_token)
    await service.backend.sync()
    replica = service.backend.replica
    replica.cache.expire()
    names = _directory(request).sorted_names(replica)
    body = _page(replica, names, chosen, after or "", limit)
    return Response(body, media_type="application/json")
