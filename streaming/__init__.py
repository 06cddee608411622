"""Tailcast's framework-free core: ids, items, cache, broadcast, subscriptions and backends."""

from .backends import Backend, MemoryBackend, Stats
from .broadcast import Broadcast
from .cache import ItemCache, Loss
from .clock import Clock, wall_clock_ms
from .config import LogConfig
from .counters import Counters, Distribution
from .errors import BackendClosed, BackendUnavailable, InvalidId, TailcastError
from .events import Live, Reset, ResetReason
from .ids import IdGenerator, StreamId
from .item import DEFAULT_TOPIC, Draft, Item
from .replica import Replica
from .subscription import Event, Subscription

__all__ = [
    "DEFAULT_TOPIC",
    "Backend",
    "BackendClosed",
    "BackendUnavailable",
    "Broadcast",
    "Clock",
    "Counters",
    "Distribution",
    "Draft",
    "Event",
    "IdGenerator",
    "InvalidId",
    "Item",
    "ItemCache",
    "Live",
    "LogConfig",
    "Loss",
    "MemoryBackend",
    "Replica",
    "Reset",
    "ResetReason",
    "Stats",
    "StreamId",
    "Subscription",
    "TailcastError",
    "wall_clock_ms",
]
