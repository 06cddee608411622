"""Which Redis errors mean "this server cannot take writes now" (retry later, elsewhere).

Those are the refusals of a server that is, or just became, a replica, or is not ready
(``READONLY``, ``UNBLOCKED``, ``WAIT`` on a replica, ``LOADING``, ``MASTERDOWN``,
``NOREPLICAS``, ``BUSY``), and every connection or timeout error. Any other error is a
fault (a bug, or a key of the wrong type): the caller should not retry it.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
"""Errors of the connection itself (redis-py counts ``LOADING`` among them)."""

_NOT_WRITABLE_CODES = frozenset(
    {"READONLY", "UNBLOCKED", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY"}
)
_WAIT_ON_REPLICA = "WAIT cannot be used with replica instances"


def refuses_writes(exc: BaseException) -> bool:
    """Whether ``exc`` says the server cannot take writes now (rather than a fault)."""
    if isinstance(exc, UNREACHABLE):
        return True
    if not isinstance(exc, ResponseError):
        return False
    text = str(exc)
    # redis-py strips the code of the errors it knows into `status_code`.
    code = getattr(exc, "status_code", None) or text.partition(" ")[0]
    return code in _NOT_WRITABLE_CODES or _WAIT_ON_REPLICA in text


def epoch_moved(exc: BaseException) -> bool:
    """Whether the publish script refused because the log started a new epoch."""
    return isinstance(exc, ResponseError) and str(exc).startswith("EPOCH")
