"""Request and response shapes of the HTTP API."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from streaming import DEFAULT_TOPIC

NAME_MAX = 256
NAME_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
"""Keys and topics hold no control characters (C0, DEL, C1) and no line or paragraph
separator: the rule as a regular expression that ECMA-262 (JSON Schema) and Python read
alike, so the contract states exactly what the server enforces."""
TOPIC_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029*]*$"
"""A published topic is a `Name` without ``*``: the star makes a topic asked for a pattern."""
LIMIT_MAX = 2**63 - 1
"""The largest ``limit`` a query takes (a signed 64-bit integer)."""
DATA_DEPTH_MAX = 128
"""How deep ``data`` may nest arrays and objects. The encoder stops at about 250 levels, so
deeper data could be parsed but never stored or sent: it is refused up front instead."""


_NAME = re.compile(NAME_PATTERN)


def is_printable(name: str) -> bool:
    """Whether ``name`` holds no control character or line separator (`NAME_PATTERN`)."""
    # str.isprintable is False for every character the pattern refuses (and for some it
    # takes, such as U+3000): True settles it at C speed; False asks the pattern.
    return name.isprintable() or _NAME.fullmatch(name) is not None  # "$" would allow "\n"


def _printable(value: str) -> str:
    if not is_printable(value):
        raise ValueError(
            "must not contain control characters (U+0000-U+001F, U+007F-U+009F) or line "
            "separators (U+2028, U+2029)"
        )
    return value


def within_depth(data: Any) -> Any:
    """``data``, if it nests arrays and objects at most `DATA_DEPTH_MAX` deep; else
    ValueError."""
    # Parsed JSON holds exactly dicts, lists and scalars. Most data nests nothing: settled
    # in one pass over its values.
    kind = type(data)
    if kind is not dict and kind is not list:
        return data
    for value in data.values() if kind is dict else data:
        if type(value) is dict or type(value) is list:
            break
    else:
        return data
    # One level of containers at a time, so no recursion however deep.
    level = [data]
    for _ in range(DATA_DEPTH_MAX):
        if not level:
            return data
        inner: list[Any] = []
        for container in level:
            inner += container.values() if type(container) is dict else container
        level = [value for value in inner if type(value) is dict or type(value) is list]
    if level:
        raise ValueError(f"nests arrays and objects over the depth limit of {DATA_DEPTH_MAX}")
    return data


def _not_a_pattern(value: str) -> str:
    if "*" in value:
        raise ValueError("must not contain '*', which makes a topic a pattern (reserved)")
    return value


Name = Annotated[
    str,
    Field(
        min_length=1, max_length=NAME_MAX, strict=True, json_schema_extra={"pattern": NAME_PATTERN}
    ),
    AfterValidator(_printable),
]


Topic = Annotated[
    str,
    Field(
        min_length=1, max_length=NAME_MAX, strict=True, json_schema_extra={"pattern": TOPIC_PATTERN}
    ),
    AfterValidator(_printable),
    AfterValidator(_not_a_pattern),
]


class ItemIn(BaseModel):
    """An item as a producer posts it."""

    model_config = ConfigDict(extra="forbid")

    data: Annotated[Any, AfterValidator(within_depth)] = Field(
        description=f"Any JSON value, nesting arrays and objects at most {DATA_DEPTH_MAX} deep."
    )
    key: Name | None = Field(None, description="Identity within the topic; defaults to the id.")
    topic: Topic = Field(
        DEFAULT_TOPIC, description="Topic the item belongs to; '*' is reserved for patterns."
    )
    ttl: Annotated[float, Field(strict=True, gt=0)] | None = Field(
        None, description="Seconds to keep the item; null means the server's default."
    )


class ItemOut(BaseModel):
    """A stored item, as returned by the API and sent on streams."""

    id: str = Field(description="Stream id '<ms>-<seq>', strictly increasing.")
    key: str
    topic: str
    data: Any
    created_at: int = Field(description="Unix time in milliseconds.")
    expires_at: int = Field(description="Unix time in milliseconds.")


class Health(BaseModel):
    status: str
    version: str
    backend: str
    items: int
    bytes: int
    subscribers: int


class ServiceStats(BaseModel):
    """Counters and gauges of this instance, cheap to read (the dashboard polls it)."""

    time: int = Field(description="Unix time in milliseconds.")
    uptime: float = Field(description="Seconds since the service started.")
    backend: str
    items_published: int = Field(description="Items published through this instance.")
    items_delivered: int = Field(description="Live items written to this instance's streams.")
    subscribers: int
    cache_items: int
    cache_bytes: int
    resets: dict[str, int] = Field(description="Reset events sent, by reason.")
    catchups: int = Field(description="Catch-ups from the cache of overrun subscribers.")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="Always 'about:blank': the status says what happened.")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it.")
    errors: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Present on 400/422 from validation: one entry (loc, msg, type) per error.",
    )
