"""The HTTP routes: publish, read, stream, health, stats and metrics."""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Sequence
from itertools import chain, repeat
from operator import itemgetter
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from app import __version__
from app.http.auth import authorize_publish, authorize_read
from app.http.body import read_json
from app.http.event_stream import EventStream
from app.http.item_list import ItemList
from app.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from app.http.metrics import RESET_REASONS
from app.http.problems import Problem, describe
from app.http.schemas import (
    LIMIT_MAX,
    NAME_MAX,
    Health,
    ItemIn,
    ItemOut,
    ServiceStats,
    is_printable,
    within_depth,
)
from app.http.service import Service
from app.http.sse import item_frame
from app.settings import Settings
from streaming import DEFAULT_TOPIC, Draft, InvalidId, Item, StreamId, wall_clock_ms
from streaming.patterns import is_pattern

router = APIRouter()
logger = logging.getLogger("tailcast")

JSON = "application/json"
_PROBLEM_CONTENT = {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"description": _DESCRIPTIONS[code], "content": _PROBLEM_CONTENT} for code in codes
    }


_DESCRIPTIONS = {
    400: "Malformed JSON, invalid UTF-8, or a malformed query parameter or header.",
    401: "Missing, malformed, expired or wrongly signed token; see WWW-Authenticate.",
    403: "The JWT does not grant every topic asked for (nothing was stored).",
    404: "No such item.",
    413: "The body is over the size limit.",
    415: "The body is not JSON.",
    422: "The body is JSON but not a valid item or batch.",
    503: "Nothing was stored: shutting down, or the backend cannot take writes; see Retry-After.",
}

TopicQuery = Annotated[
    list[str],
    Query(description="Only these topics (repeatable); absent means all topics."),
]
AccessTokenQuery = Annotated[
    str | None,
    Query(description="A JWT, for clients that cannot set 'Authorization' (EventSource)."),
]
# Reads need a JWT only when jwt_secret is set: `{}` is "no credentials".
_READ_SECURITY: dict[str, Any] = {"security": [{}, {"jwt": []}]}
SinceQuery = Annotated[
    str | None,
    Query(description="Only items after this id ('<ms>-<seq>'); empty means absent."),
]
LastQuery = Annotated[
    int | None,
    Query(
        ge=1,
        le=LIMIT_MAX,
        description="Only the newest this many cached items (after since, when given).",
    ),
]


def _service(request: Request) -> Service:
    service: Service = request.app.state.tailcast
    return service


def _json_response(body: bytes, status: int = 200) -> Response:
    return _JSONBody(body, status)


class _JSONBody(Response):
    """A JSON body already encoded: the response `Response` would make of it, with its
    headers written directly (`Response.init_headers` is generic, and costs a publish more
    than its own answer does)."""

    media_type = JSON

    def __init__(self, body: bytes, status: int) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE]


_JSON_TYPE = (b"content-type", JSON.encode())


def _json_array(items: Sequence[Item]) -> bytes:
    return b"[" + b",".join(item.json for item in items) + b"]"


# Ids as the contract states them: every id the service issues fits (ms has 13 digits).
_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")


def _parse_id(value: str | None, name: str) -> StreamId | None:
    if not value:
        return None
    if _ID.fullmatch(value) is None:
        raise Problem(
            400,
            f"{name}: {value[:64]!r} is not a stream id '<ms>-<seq>' (two "
            "integers of 1 to 19 digits).",
        )
    try:
        return StreamId.parse(value)
    except InvalidId as exc:  # not reached: 19 digits always fit in 64 bits
        raise Problem(400, f"{name}: {exc}.") from None


def _limit_topics(topics: list[str], settings: Settings) -> None:
    """Refuse a read naming more topics than ``max_topics``: each one costs the stream (or
    the listing) memory and every fan-out round work, so a client may not ask for
    thousands."""
    if len(topics) > settings.max_topics:
        raise Problem(
            400,
            f"{len(topics)} topic parameters; at most {settings.max_topics} are allowed "
            "(max_topics).",
        )


STREAMS_RETRY_AFTER = 5
"""Seconds a stream refused at `max_streams` is told to wait (``Retry-After``)."""


def _limit_streams(service: Service) -> None:
    """Refuse a stream past ``max_streams``, so that the connections left serve publishes
    and ``/healthz``."""
    most = service.limits.max_streams
    if len(service.streams) >= most:
        service.metrics.streams_refused.inc()
        raise Problem(
            503,
            f"{most} streams are open, the most this server takes (max_streams); retry later.",
            headers={"Retry-After": str(STREAMS_RETRY_AFTER)},
        )


_TOPIC_SETS: weakref.WeakValueDictionary[frozenset[str], frozenset[str]] = (
    weakref.WeakValueDictionary()
)
"""Topic sets in use, one object each: thousands of streams on the same topics (or on all
of them) keep one set between them, not one each (a frozenset takes 216 bytes)."""


def _parse_topics(topics: list[str]) -> frozenset[str]:
    """The topics asked for; an empty value counts as absent (a cleared filter)."""
    chosen = frozenset(topic for topic in topics if topic)
    for topic in chosen:
        if len(topic) > NAME_MAX or not is_printable(topic):
            raise Problem(
                400,
                f"topic {topic[:64]!r}{'...' if len(topic) > 64 else ''} is not 1-{NAME_MAX} "
                "characters without control characters or line separators.",
            )
    return _TOPIC_SETS.setdefault(chosen, chosen)


def _drafts(payload: Any, settings: Settings) -> list[Draft]:
    """Validate a posted object or array, all or nothing."""
    prefix: tuple[str, ...] = ()
    if isinstance(payload, dict):
        entries, prefix = [payload], ("body",)
    elif isinstance(payload, list):
        if not payload:
            raise Problem(422, "The batch is empty; send at least one item.")
        if len(payload) > settings.max_batch:
            raise Problem(
                422, f"The batch has {len(payload)} items; at most {settings.max_batch} allowed."
            )
        entries = payload
    else:
        raise Problem(422, "The body must be a JSON object (one item) or an array of them.")
    drafts = _plain_drafts(entries, settings)
    return _validated(entries, prefix, settings) if drafts is None else drafts


_FIELDS = frozenset(ItemIn.model_fields)
_DICTS, _STRINGS = frozenset({dict}), frozenset({str})
_data_of = itemgetter("data")


class _NotPlain(Exception):
    """A value the plain checks do not settle: pydantic decides."""


_COLUMNS_FROM = 16
"""Batches of this many items or more are checked a field at a time; fewer, item by item
(a single item: 1.4 µs against 5 µs a field at a time)."""


def _plain_drafts(entries: list[Any], settings: Settings) -> list[Draft] | None:
    """The drafts ``entries`` ask for if every one is plainly valid, else None: then
    `_validated` decides, with pydantic, and words any error.

    Accepts only what `ItemIn` (and the ttl range) accepts, by plain checks of the values
    as parsed JSON holds them, for a batch a field at a time over the whole batch (most
    checks one pass in C): pydantic, or the same checks made item by item in Python, cost
    several times more than the rest of reading an item.
    """
    if len(entries) < _COLUMNS_FROM:
        drafts: list[Draft] = []
        for entry in entries:
            draft = _plain_draft(entry, settings)
            if draft is None:
                return None
            drafts.append(draft)
        return drafts
    if set(map(type, entries)) != _DICTS:
        return None
    if not set().union(*entries) <= _FIELDS:  # the fields they name
        return None
    try:
        data = list(map(_data_of, entries))
    except KeyError:
        return None
    get, count = dict.get, len(entries)
    keys = list(map(get, entries, repeat("key", count)))
    topics = list(map(get, entries, repeat("topic", count), repeat(DEFAULT_TOPIC, count)))
    ttls = list(map(get, entries, repeat("ttl", count)))
    named = keys if None not in keys else [key for key in keys if key is not None]
    if not (_plain_names(named) and _plain_topics(topics)):
        return None
    if not _within_depth(data):
        return None
    if ttls.count(None) == len(ttls):  # `==`: no ttl given is None, nor equal to it
        ttl_ms: list[int | None] = ttls
    else:
        try:
            ttl_ms = [_plain_ttl_ms(ttl, settings) for ttl in ttls]
        except _NotPlain:
            return None
    return list(map(Draft, data, keys, topics, ttl_ms))


def _plain_draft(entry: Any, settings: Settings) -> Draft | None:
    """`_plain_drafts` for one item: its draft if it is plainly valid, else None."""
    if type(entry) is not dict or "data" not in entry or not entry.keys() <= _FIELDS:
        return None
    key = entry.get("key")
    topic = entry.get("topic", DEFAULT_TOPIC)
    if (key is not None and not _plain_name(key)) or not _plain_name(topic) or "*" in topic:
        return None
    try:
        ttl_ms = _plain_ttl_ms(entry.get("ttl"), settings)
    except _NotPlain:
        return None
    data = entry["data"]
    if type(data) is dict or type(data) is list:
        try:
            within_depth(data)
        except ValueError:
            return None
    return Draft(data, key, topic, ttl_ms)


def _plain_name(value: Any) -> bool:
    """Whether ``value`` is plainly a valid name (see `_plain_names`)."""
    return type(value) is str and 0 < len(value) <= NAME_MAX and value.isprintable()


def _plain_names(names: list[Any]) -> bool:
    """Whether every one of ``names`` is plainly a valid name (names refused by
    `str.isprintable` may still be valid, such as U+3000: pydantic decides)."""
    if not names:
        return True
    if set(map(type, names)) != _STRINGS:
        return False
    lengths = list(map(len, names))
    return min(lengths) > 0 and max(lengths) <= NAME_MAX and all(map(str.isprintable, names))


def _plain_topics(topics: list[Any]) -> bool:
    """Whether every one of ``topics`` is plainly a valid topic to publish on (a batch
    names few topics: each is checked once)."""
    if set(map(type, topics)) != _STRINGS:
        return False
    distinct = list(set(topics))
    return _plain_names(distinct) and not any("*" in topic for topic in distinct)


def _within_depth(data: list[Any]) -> bool:
    """Whether every one of ``data`` nests within `DATA_DEPTH_MAX`; most nest nothing, or
    are objects of scalars (settled in one pass in C)."""
    kinds = set(map(type, data))
    if dict not in kinds and list not in kinds:
        return True
    if kinds == _DICTS:
        inner = set(map(type, chain.from_iterable(map(dict.values, data))))
        if dict not in inner and list not in inner:
            return True
    try:
        for value in data:
            within_depth(value)
    except ValueError:
        return False
    return True


def _plain_ttl_ms(ttl: Any, settings: Settings) -> int | None:
    """The ttl in milliseconds if ``ttl`` is plainly valid (None: not given), else
    `_NotPlain`."""
    if ttl is None:
        return None
    kind = type(ttl)
    if kind is not float and kind is not int:  # bool, a string, an exact big number
        raise _NotPlain
    seconds = float(ttl)
    if not (seconds > 0 and settings.ttl_min <= seconds <= settings.ttl_max):
        raise _NotPlain
    return round(seconds * 1000)


def _validated(entries: list[Any], prefix: tuple[str, ...], settings: Settings) -> list[Draft]:
    """Validate every entry with `ItemIn`, and refuse the body (422) listing every error."""
    drafts: list[Draft] = []
    errors: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        loc = prefix or ("body", index)
        try:
            item = ItemIn.model_validate(entry)
        except ValidationError as exc:
            errors += [
                {"loc": [*loc, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            continue
        if item.ttl is not None and not settings.ttl_min <= item.ttl <= settings.ttl_max:
            errors.append(
                {
                    "loc": [*loc, "ttl"],
                    "msg": f"ttl must be between {settings.ttl_min:g} and "
                    f"{settings.ttl_max:g} seconds",
                    "type": "ttl_range",
                }
            )
            continue
        ttl_ms = None if item.ttl is None else round(item.ttl * 1000)
        drafts.append(Draft(item.data, item.key, item.topic, ttl_ms))
    if errors:
        raise Problem(422, describe(errors), errors=errors)
    return drafts


@router.post(
    "/items",
    status_code=201,
    summary="Publish one item or a batch",
    response_model=ItemOut | list[ItemOut],
    responses=_problems(400, 401, 403, 413, 415, 422, 503),
    openapi_extra={
        "security": [{"publishToken": []}, {"jwt": []}],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/ItemIn"},
                            {"type": "array", "items": {"$ref": "#/components/schemas/ItemIn"}},
                        ]
                    }
                }
            },
        },
    },
)
async def publish(request: Request) -> Response:
    service = _service(request)
    with service.metrics.publish_seconds.time():
        grant = authorize_publish(request, service.settings, service.publish_token)
        payload = await read_json(request, service.settings.max_body_bytes)
        drafts = _drafts(payload, service.settings)
        grant.require({draft.topic for draft in drafts})
        items = await service.backend.publish(drafts)
    for item in items:  # made here: framed now, so that no replay pays for it
        item_frame(item)
    body = items[0].json if isinstance(payload, dict) else _json_array(items)
    return _json_response(body, 201)


@router.get(
    "/items",
    summary="List cached items in id order",
    response_model=list[ItemOut],
    responses=_problems(400, 401, 403),
    openapi_extra=_READ_SECURITY,
)
async def list_items(
    request: Request,
    topic: TopicQuery = [],  # noqa: B006 - FastAPI copies defaults
    since: SinceQuery = None,
    limit: Annotated[
        int | None, Query(ge=1, le=LIMIT_MAX, description="At most this many items.")
    ] = None,
    last: LastQuery = None,
    access_token: AccessTokenQuery = None,
) -> Response:
    service = _service(request)
    _limit_topics(topic, service.settings)
    topics = _parse_topics(topic)
    authorize_read(request, service.settings, topics, access_token)
    after = _parse_id(since, "since")
    await service.backend.sync(after)
    return ItemList(service, topics, after, limit, last=last)


@router.get(
    "/items/{key:path}",
    summary="The cached item with this key",
    response_model=ItemOut,
    responses=_problems(400, 401, 403, 404),
    openapi_extra=_READ_SECURITY,
)
async def get_item(
    request: Request,
    key: str,
    topic: Annotated[str, Query(description="The item's topic.")] = "default",
    access_token: AccessTokenQuery = None,
) -> Response:
    topics = _parse_topics([topic])
    if not topics:
        raise Problem(400, "topic must not be empty.")
    if is_pattern(topic):
        raise Problem(400, f"topic {topic[:64]!r} is a pattern; an item is read from one topic.")
    service = _service(request)
    authorize_read(request, service.settings, topics, access_token)
    await service.backend.sync()
    item = service.backend.get(topic, key)
    if item is None:
        raise Problem(404, f"No cached item with key {key!r} in topic {topic!r}.")
    return _json_response(item.json)


def _parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional parameter of `stream`, documented as FastAPI documents its own."""
    where = "header" if name == "Last-Event-ID" else "query"
    return {
        "name": name,
        "in": where,
        "required": False,
        "schema": schema,
        "description": description,
    }


_OR_NULL = {"type": "null"}
_COUNT = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": LIMIT_MAX}, _OR_NULL]}
_TEXT = {"anyOf": [{"type": "string"}, _OR_NULL]}
_STREAM_PARAMETERS = [
    _parameter(
        "topic",
        {"type": "array", "items": {"type": "string"}, "default": []},
        "Only these topics (repeatable); absent means all topics.",
    ),
    _parameter("since", _TEXT, "Only items after this id ('<ms>-<seq>'); empty means absent."),
    _parameter("limit", _COUNT, "End after this many items."),
    _parameter(
        "last",
        _COUNT,
        "Replay only the newest this many cached items (after since), then go live; a "
        "resume with Last-Event-ID replays everything after it.",
    ),
    _parameter(
        "access_token",
        _TEXT,
        "A JWT, for clients that cannot set 'Authorization' (EventSource).",
    ),
    _parameter("Last-Event-ID", _TEXT, "Resume after this id; wins over since."),
]


@router.get(
    "/stream",
    summary="Server-Sent Events: cached items, then live ones",
    response_class=EventStream,
    status_code=200,
    responses={
        200: {
            "description": "An endless event stream: optional `reset`, replayed `item`s, "
            "one `live`, then live `item`s.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_problems(400, 401, 403),
        503: {
            "description": "max_streams streams are open; retry after Retry-After seconds.",
            "content": _PROBLEM_CONTENT,
        },
    },
    openapi_extra={**_READ_SECURITY, "parameters": _STREAM_PARAMETERS},
)
async def stream(request: Request) -> EventStream:
    """Open a stream. The handler reads its own parameters (`_STREAM_PARAMETERS` documents
    them), so the app's fast path and FastAPI's routing parse and refuse them alike."""
    await _service(request).stream_starts.wait()
    query = request.query_params
    return _open_stream(
        request,
        query.getlist("topic"),
        query.get("since"),
        _parse_count(query.get("limit"), "limit"),
        request.headers.get("last-event-id"),
        query.get("access_token"),
        _parse_count(query.get("last"), "last"),
    )


def _parse_count(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= LIMIT_MAX:
        raise Problem(400, f"{name}: must be an integer from 1 to {LIMIT_MAX}, not {text[:64]!r}.")
    return count


def _open_stream(
    request: Request,
    topic: list[str],
    since: str | None,
    limit: int | None,
    last_event_id: str | None,
    access_token: str | None,
    last: int | None = None,
) -> EventStream:
    service = _service(request)
    _limit_topics(topic, service.settings)
    topics = _parse_topics(topic)
    authorize_read(request, service.settings, topics, access_token)
    _limit_streams(service)
    resume = _parse_id(last_event_id, "Last-Event-ID")
    if resume is not None:
        # A reconnect resumes exactly: everything after the id, whatever `last` says.
        return EventStream(service, topics, resume, limit)
    return EventStream(service, topics, _parse_id(since, "since"), limit, last=last)


@router.get(
    "/healthz",
    summary="Service health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Degraded: the backend takes no writes."}},
)
async def healthz(request: Request, response: Response) -> Health:
    service = _service(request)
    stats = service.backend.stats()
    healthy = service.backend.healthy
    if not healthy:
        response.status_code = 503
    return Health(
        status="ok" if healthy else "degraded",
        version=__version__,
        backend=service.backend.name,
        items=stats.items,
        bytes=stats.bytes,
        subscribers=stats.subscribers,
    )


@router.get(
    "/stats",
    summary="Counters and gauges of this instance, as JSON",
    response_model=ServiceStats,
)
async def stats(request: Request) -> Response:
    service = _service(request)
    stats = service.backend.stats()
    counters = stats.counters
    body = {
        "time": wall_clock_ms(),
        "uptime": service.metrics.uptime,
        "backend": service.backend.name,
        "items_published": counters.published,
        "items_delivered": counters.delivered,
        "subscribers": stats.subscribers,
        "cache_items": stats.items,
        "cache_bytes": stats.bytes,
        "resets": {reason: counters.resets.get(reason, 0) for reason in RESET_REASONS},
        "catchups": counters.catchups,
    }
    return _json_response(orjson.dumps(body))


@router.get(
    "/metrics",
    summary="Prometheus metrics of this instance",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format, version 0.0.4.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    return Response(_service(request).metrics.render(), media_type=METRICS_CONTENT_TYPE)
