"""Commands sent on one pooled connection and their replies read back, without redis-py's
pipeline machinery (a pipeline object, retries, response callbacks, observability hooks)
nor its packing: on the publish path they cost more than the rest of a publish."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.exceptions import ResponseError


async def exchange(client: Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Send ``commands`` in one write on one of ``client``'s connections and return their
    replies as the parser built them, an error reply as its exception (every reply is
    read, so the connection stays in step). Any other failure, or a cancellation, drops
    the connection and propagates: nothing is retried."""
    pool = client.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await connection.send_packed_command(_packed(commands), check_health=False)
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)


def _packed(commands: Sequence[Sequence[Any]]) -> bytes:
    """``commands`` in the Redis protocol, as redis-py packs them with hiredis (``str`` as
    UTF-8), without its per-argument encoding in Python, which cost more than the rest of
    sending a publish."""
    return b"".join([hiredis.pack_command(tuple(command)) for command in commands])
