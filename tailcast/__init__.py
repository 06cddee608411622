"""Tailcast's Python client: publish items, and subscribe with automatic resume.

It needs only httpx, httpx-sse and anyio (``pip install tailcast`` installs no
server dependency); see `tailcast.client` for the details.
"""

from tailcast.client import Subscription, TailcastClient, encode_item
from tailcast.errors import (
    ClientError,
    PayloadTooLarge,
    ProblemError,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from tailcast.models import Event, LiveEvent, ResetError, ResetEvent, StoredItem, TopicInfo, id_key

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
