"""Tailcast's Python client: publish items, and subscribe with automatic resume.

It needs only httpx, httpx-sse and anyio (``pip install tailcast`` installs no
server dependency); see `tailcast.client` for the details.
"""

from tailcast.client import (
    ClientError,
    Event,
    LiveEvent,
    PayloadTooLarge,
    ProblemError,
    ResetError,
    ResetEvent,
    StoredItem,
    Subscription,
    TailcastClient,
    TopicInfo,
    Unauthorized,
    Unavailable,
    Unprocessable,
    encode_item,
    id_key,
)

__all__ = [
    "ClientError",
    "Event",
    "LiveEvent",
    "PayloadTooLarge",
    "ProblemError",
    "ResetError",
    "ResetEvent",
    "StoredItem",
    "Subscription",
    "TailcastClient",
    "TopicInfo",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "encode_item",
    "id_key",
]
