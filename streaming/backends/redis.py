"""A log shared by many processes through one Redis Stream.

Every publish is an ``XADD`` (a batch is one Lua script, so its ids are consecutive and
nothing interleaves); Redis assigns the ids, so every instance sees the same ones. Each
process runs one tail loop (``XREAD BLOCK`` on a connection of its own) that feeds the
local `Replica`, so replay, merge and slow-subscriber handling are the core's. A publish
whose entries directly follow the last entry the replica applied (the script says which
entry they follow) applies its items itself, without waiting for the tail, which then
skips them.

History can be lost (a flush, a restart without persistence, a failover to a replica
that lacked recent writes). The log is organised in epochs: an epoch starts with a
marker entry whose id is stored under ``<prefix>:epoch``, past every id any instance
saw. Publishing checks the epoch atomically; an instance that finds it gone or the
stream behind what it saw starts a new one, and every tail that reads a new marker
reloads its cache and raises its floor, so resuming from a lost id yields a ``reset``.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

import anyio
import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from .. import exactjson
from ..clock import Clock, wall_clock_ms
from ..config import LogConfig
from ..errors import BackendUnavailable
from ..ids import StreamId, consecutive
from ..item import Draft, Item
from . import _scripts
from ._grouped import Appended, Entry, GroupedWrites
from ._redis_errors import UNREACHABLE, epoch_moved, refuses_writes
from ._redis_exchange import exchange
from .base import Backend

logger = logging.getLogger("tailcast.redis")

_PUBLISH_SHA = hashlib.sha1(_scripts.PUBLISH.encode()).hexdigest()
_HOLDS_SHA = hashlib.sha1(_scripts.HOLDS.encode()).hexdigest()
_LOAD_PAGE = 10_000
_TAIL_COUNT = 1_000
_WAKE_COUNT = 16
"""Entries a read takes when the tail has caught up: the read blocks, and what wakes it is
most often a publish of this instance's, whose items it applies itself. A batch's entries
read back only to be skipped cost the tail and Redis more than the rest of the batch's
trip; a bigger batch from elsewhere costs one more read."""
_CATCH_UP_WAIT = 2.0  # seconds a read waits for the local tail to reach an id
_LAND_WAIT = 0.002  # seconds the tail waits for publishes under way to apply their items


class RedisBackend(Backend):
    """The Redis Streams backend. Use as ``async with``: it owns a tail task."""

    name = "redis"

    def __init__(
        self,
        connect: Callable[..., Redis],
        config: LogConfig | None = None,
        clock: Clock = wall_clock_ms,
        *,
        prefix: str = "tailcast",
        block_ms: int = 5_000,
        max_len: int = 1_000_000,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1_000,
    ) -> None:
        super().__init__(config or LogConfig(), clock, StreamId(0, 0))
        self._connect = connect
        self._stream = f"{prefix}:log"
        self._epoch_key = f"{prefix}:epoch"
        self._block_ms = block_ms
        self._max_len = max_len
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = wait_timeout_ms
        self._epoch: str | None = None
        self._commands: Redis | None = None
        self._publisher: Redis | None = None
        self._tail_client: Redis | None = None
        self._healthy = False
        self._advanced: anyio.Event | None = None
        self._acked: Entry | None = None  # the newest entry a publish here answered with
        self._tip: Entry | None = None  # the last entry this replica applied, if known
        # Batches published here and not applied yet, by the id of the entry each follows
        # in the log: applied as built for the answer (never parsed and encoded again) once
        # this replica has applied that very entry.
        self._mine: dict[StreamId, _Batch] = {}
        self._writing = 0  # publishes waiting for Redis's answer
        self._writes = GroupedWrites(self._write)

    @property
    def healthy(self) -> bool:
        """Whether the last exchange with Redis succeeded."""
        return self._healthy

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Self]:
        self._commands = self._connect(socket_timeout=5, socket_connect_timeout=2, retry=_retry())
        # Publishes never retry on their own: a script and its WAIT retried on another
        # connection (or a reconnected one, now to a replica) would make a false 201.
        self._publisher = self._connect(
            socket_timeout=5 + self._wait_timeout_ms / 1000,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )
        # The tail blocks for `block_ms`: its socket timeout must be longer, or every
        # idle read would time out.
        self._tail_client = self._connect(
            socket_timeout=self._block_ms / 1000 + 5,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(), 0),
        )
        self._ensure_script = self._commands.register_script(_scripts.ENSURE_EPOCH)
        try:
            self._epoch = await self._ensure_epoch()
            self.replica.floor = StreamId.parse(self._epoch)
            items, self._tip = await self._fetch(self._commands)
            self._load(items)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._tail)
                try:
                    yield self
                finally:
                    self.replica.close()
                    tasks.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_clients()

    async def _close_clients(self) -> None:
        for client in (self._tail_client, self._publisher, self._commands):
            if client is not None:
                await client.aclose()

    async def publish(self, drafts: Sequence[Draft]) -> list[Item]:
        self._ensure_open()
        if not drafts:
            return []
        ttl_ms = self.config.ttl_ms
        ttls = [ttl_ms(draft.ttl_ms) for draft in drafts]
        payloads = list(map(_encode, drafts, ttls))
        follows, ids = await self._writes.write(payloads)
        # Built as every instance builds it from the entry (`_item`): times from the id.
        items = Item.create_all(ids, drafts, ttls)
        self.replica.counters.published += len(items)
        tip = (items[-1].id, _scripts.payload_digest(payloads[-1]))
        if self._acked is None or tip[0] > self._acked[0]:
            self._acked = tip
        if follows is not None and tip[0] > self._position():
            self._mine[follows[0]] = _Batch(follows[1], items, payloads[0], tip)
            self._apply_mine()
        return items

    def _apply_mine(self) -> None:
        """Apply the batches published here that follow what this replica has applied, as
        the tail would on reading them: nothing of another writer's lies in between. A
        batch that follows entries not applied yet waits for the tail to apply those; one
        that follows another entry under the same id (a server that a failover left
        behind wrote it) is left to the tail, which finds the log lost what it applied."""
        mine, applied = self._mine, False
        while mine:
            position, digest = self._seen()
            batch = mine.get(position)
            if batch is None or (digest and batch.follows != digest):
                break
            del mine[position]
            self.replica.apply(batch.items)
            self._tip = batch.tip
            applied = True
        if applied:
            self._wake()

    def _seen(self) -> Entry:
        """The last entry this replica applied: its id, and its digest ('' if unknown)."""
        position, tip = self._position(), self._tip
        return position, (tip[1] if tip is not None and tip[0] == position else "")

    async def _write(self, payloads: list[bytes]) -> Appended:
        """Append ``payloads`` to the log; 503 (`BackendUnavailable`) when this Redis cannot
        take writes now, or when too few replicas confirmed them in time."""
        for attempt in range(2):
            try:
                ids = await self._write_once(payloads)
            except (RedisError, OSError) as exc:
                if epoch_moved(exc) and not attempt:
                    await self._epoch_applied(await self._ensure_epoch())
                    continue
                if refuses_writes(exc):
                    self._healthy = False
                    raise BackendUnavailable(f"Redis cannot take writes now ({exc}).") from exc
                raise
            self._healthy = True
            return ids
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_once(self, payloads: list[bytes]) -> Appended:
        """The publish script and its ``WAIT``, pipelined on one connection: the WAIT
        confirms exactly this connection's write. Returns the entry the new ones follow
        (None if the log held none) and the new ids."""
        publisher = self._require(self._publisher)
        min_id = f"{max(0, self.clock() - self.config.ttl_max_ms)}-0"
        args = (self._stream, self._epoch_key, self._epoch or "", min_id, self._max_len)
        commands: list[tuple[Any, ...]] = [("EVALSHA", _PUBLISH_SHA, 2, *args, *payloads)]
        if self._wait_replicas:
            commands.append(("WAIT", self._wait_replicas, self._wait_timeout_ms))
        while True:
            self._writing += 1
            try:
                replies = await exchange(publisher, commands)
            finally:
                self._writing -= 1
            ids = replies[0]
            if not isinstance(ids, NoScriptError):
                break
            # A restarted or newly promoted Redis lacks the script; nothing ran.
            await publisher.script_load(_scripts.PUBLISH)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        if self._wait_replicas and replies[1] < self._wait_replicas:
            self._healthy = False
            raise BackendUnavailable(
                f"Redis replicated the write to {replies[1]} of {self._wait_replicas} "
                "replicas in time; it may be lost."
            )
        follows, digest, first, count = ids
        new = consecutive(StreamId.trusted(first), count)  # in one millisecond (the script)
        return ((StreamId.trusted(follows), _text(digest)) if follows else None), new

    async def sync(self, since: StreamId | None = None) -> None:
        """Read-your-writes on this instance: wait (briefly) for the tail to apply every
        write answered here. ``since`` (from another instance, perhaps) is waited for
        only if the log holds it: an id it never had (from the future) waits for nothing."""
        if self._acked is not None:
            await self._caught_up(self._acked[0])
        last = self.replica.last_id
        if since is None or (last is not None and since <= last):
            return
        commands = self._require(self._commands)
        try:
            held: Any = await commands.xrange(self._stream, str(since), str(since), count=1)
        except (RedisError, OSError):
            return  # Redis cannot tell: go by what this instance has seen
        if held:
            await self._caught_up(since)

    async def _caught_up(self, id: StreamId) -> None:
        """Wait (briefly) until the tail has applied ``id``: read-your-writes locally."""
        with anyio.move_on_after(_CATCH_UP_WAIT):
            while self.replica.last_id is None or self.replica.last_id < id:
                await self._advance()

    async def _epoch_applied(self, epoch: str) -> None:
        """Wait (briefly) until the tail has moved to ``epoch``; only the tail reloads."""
        with anyio.move_on_after(_CATCH_UP_WAIT):
            while self._epoch != epoch:
                await self._advance()
        if self._epoch != epoch:
            raise BackendUnavailable("the Redis log started a new epoch; reloading it")

    async def _advance(self) -> None:
        if self._advanced is None:
            self._advanced = anyio.Event()
        await self._advanced.wait()

    async def _ensure_epoch(self, client: Redis | None = None, seen: Entry | None = None) -> str:
        """The log's epoch, after starting a new one if the log lost history this instance
        saw: the stream is behind ``seen`` (by default the last entry we applied, or our
        newest write if later), or no longer holds it (a failover dropped writes we read
        from the old master)."""
        if seen is None:
            # Our own acknowledged writes count as seen: if the log lost them, its next
            # ids must still come after them.
            seen = self._seen()
            if self._acked is not None and self._acked[0] > seen[0]:
                seen = self._acked
        try:
            epoch, started = await self._ensure_script(
                keys=[self._stream, self._epoch_key], args=[str(seen[0]), seen[1]], client=client
            )
        except (RedisError, OSError) as exc:
            if not refuses_writes(exc):
                raise
            self._healthy = False
            raise BackendUnavailable(f"Redis cannot take writes now ({exc}).") from exc
        self._healthy = True
        epoch = _text(epoch)
        if started == _scripts.STARTED_NEW:
            logger.info("started a new log in Redis at %s (epoch %s)", self._stream, epoch)
        elif started == _scripts.STARTED_LOST:
            logger.warning("the Redis log lost its history; started epoch %s", epoch)
        elif started == _scripts.STARTED_DIVERGED:
            logger.warning(
                "the Redis log no longer holds %s, which this instance served (a failover "
                "dropped writes); started epoch %s",
                seen[0],
                epoch,
            )
        return epoch

    async def _fetch(self, client: Redis) -> tuple[list[Item], Entry | None]:
        """Every item the stream retains, in id order, and its last entry (None if none)."""
        items: list[Item] = []
        last: Entry | None = None
        start = "-"
        while True:
            entries: Any = await client.xrange(self._stream, start, "+", count=_LOAD_PAGE)
            items += self._items(entries)
            if entries:
                raw_id, fields = entries[-1]
                flat = [part for pair in fields.items() for part in pair]
                last = (StreamId.trusted(raw_id), _scripts.entry_digest(flat))
            if len(entries) < _LOAD_PAGE:
                return items, last
            start = "(" + _text(entries[-1][0])

    def _load(self, items: list[Item]) -> None:
        """Fill the cache with ``items``. Those up to the replica's last id are only cached
        (subscribers are past them); later ones are applied as live."""
        last = self.replica.last_id
        seen = [item for item in items if last is not None and item.id <= last]
        self.replica.load(seen)
        self.replica.apply(items[len(seen) :])

    async def _tail(self) -> None:
        """The one reader of the stream in this process: apply new entries in id order."""
        client = self._require(self._tail_client)
        failures, count = 0, _TAIL_COUNT
        while True:
            seen = self._seen()
            try:
                if failures:
                    # Before reading on: the log may have lost what we read last (a
                    # failover, a restart), and reading after it would hide that.
                    await self._new_epoch(await self._ensure_epoch(client), client)
                    seen = self._seen()
                    logger.info("tail reconnected to Redis; resuming after %s", seen[0])
                held, response = await self._read(client, seen, count)
                failures = 0
                self._healthy = True
                if not held:
                    # redis-py reconnected on its own (to a new master, after a failover)
                    # and the log there lacks what we served: start over from it.
                    await self._new_epoch(await self._ensure_epoch(client, seen), client)
                    continue
            except (*UNREACHABLE, BackendUnavailable, ResponseError) as exc:
                # A ResponseError too: UNBLOCKED ends a blocked XREAD when a failover demotes
                # the server, and the tail must outlive that (its task group is the backend's).
                failures += 1
                self._healthy = False
                delay = min(1.0, 0.1 * 2**failures) * random.uniform(0.5, 1.0)
                logger.warning("tail lost Redis (%s); retrying in %.1f s", exc, delay)
                await anyio.sleep(delay)
                continue
            read = _entries(response)
            if self._writing and read:
                await self._let_publishes_apply(StreamId.trusted(read[-1][-1][0]))
            applied = False
            for entries in read:
                applied |= await self._apply(entries)
            count = self._next_count(read, count, applied)

    async def _let_publishes_apply(self, last: StreamId) -> None:
        """Redis answers a publish and wakes this read at the same moment: let the
        publishes under way apply their own items (up to ``last``, the read's last entry),
        which this read then skips instead of parsing them again. Bounded: entries of
        another instance's in the read wait at most `_LAND_WAIT` for them."""
        with anyio.move_on_after(_LAND_WAIT):
            while self._position() < last:
                await self._advance()

    async def _apply(self, entries: list[list[Any]]) -> bool:
        """Apply the entries past this replica's position, in one step: batches published
        here as their publish built them, others parsed from the entry. Entries up to the
        position are in already (applied by their publish here, or by a new epoch's
        `_load`): applying them again would send them twice. Whether any was past it."""
        position = self._position()
        if not entries or StreamId.trusted(entries[-1][0]) <= position:
            return False
        batch: list[Item] = []
        mine = self._mine
        # The last entry applied: an own batch's (its entry known), or one parsed here (its
        # fields, digested once at the end).
        tip: Entry | None = None
        tip_fields: list[bytes] | None = None
        for raw_id, fields in entries:
            id = StreamId.trusted(raw_id)
            if id <= position:
                continue
            if fields[0] == b"epoch":
                self.replica.apply(batch)
                batch, tip, tip_fields = [], None, None
                await self._new_epoch(_text(raw_id), self._require(self._tail_client))
                position = self._position()
                continue
            own = mine.pop(position, None)
            if own is not None and own.items[0].id == id and own.first == fields[1]:
                batch += own.items  # its other entries are skipped as up to the position
                position = own.items[-1].id
                tip, tip_fields = own.tip, None
            else:
                batch.append(_item(id, fields[1]))
                position = id
                tip_fields = fields
        self.replica.apply(batch)
        if tip_fields is not None:
            self._tip = (position, _scripts.entry_digest(tip_fields))
        elif tip is not None:
            self._tip = tip
        self._apply_mine()
        self._forget_mine()
        self._wake()
        return True

    def _next_count(self, read: list[list[list[Any]]], count: int, applied: bool) -> int:
        """How many entries the next read takes: all it may while reads fill up with
        entries the tail applies (more wait), a few otherwise: once it has caught up, and
        when what woke it was this instance's own batch, which its publish applied (Redis
        would otherwise send every such batch back whole, only for the tail to skip it)."""
        full = sum(map(len, read)) >= count
        return _TAIL_COUNT if applied and full else _WAKE_COUNT

    def _forget_mine(self) -> None:
        """Drop batches published here that this replica has passed without them (a new
        epoch's reload, a log that lost them): nothing will apply them any more."""
        position, mine = self._position(), self._mine
        for follows in [key for key, batch in mine.items() if batch.tip[0] <= position]:
            del mine[follows]

    async def _read(self, client: Redis, seen: Entry, count: int) -> tuple[bool, Any]:
        """Whether the log still holds the entry ``seen``, and up to ``count`` entries past
        it (waiting up to ``block_ms`` for some), read from a master, in one round trip.

        The check runs first on the same connection, which redis-py may have reopened to
        another server since the last read. ``ROLE`` runs right after the read: a master
        that a failover turned into a replica goes on answering reads, from a copy of the
        new master that lacks what we read from it before. Replies come as the parser built
        them (`exchange`): redis-py's conversion of XREAD's into tuples and dicts cost more
        than everything else the tail does with an entry.
        """
        after, digest = str(seen[0]), seen[1]
        read = ("XREAD", "COUNT", count, "BLOCK", self._block_ms, "STREAMS", self._stream)
        holds = ("EVALSHA", _HOLDS_SHA, 1, self._stream, after, digest)
        commands = [holds, (*read, after), ("ROLE",)]
        while True:
            held, response, role = await exchange(client, commands)
            if not isinstance(held, NoScriptError):
                break
            await client.script_load(_scripts.HOLDS)
        for reply in (held, response, role):
            if isinstance(reply, Exception):
                raise reply
        if _text(role[0]) != "master":
            # Drop the connection: the next one asks Sentinel for the master again.
            await client.connection_pool.disconnect()
            raise BackendUnavailable(f"the tail's Redis is a {_text(role[0])} now")
        return bool(held), response

    def _position(self) -> StreamId:
        """The id of the last entry this replica has applied. Past the epoch marker too: on
        a log holding nothing else, reading after 0-0 would return the marker at once,
        forever (a busy loop)."""
        return max(self.replica.last_id or StreamId(0, 0), self.replica.floor)

    async def _new_epoch(self, marker: str, client: Redis) -> None:
        """Move to the epoch starting at ``marker``: reload the cache from the log (through
        ``client``, the tail's, so from the server the tail reads) and send every subscriber
        a ``reset`` (live ones too: they may hold items the log lost)."""
        if marker == self._epoch:
            return
        logger.warning("the Redis log started epoch %s; reloading the cache", marker)
        items, tip = await self._fetch(client)
        # No await from here on: subscribers never see the cache half reloaded.
        held = {item.id: item.json for item in items}  # the same item has the same JSON
        served = reversed(self.replica.served())
        kept = next((item.id for item in served if held.get(item.id) == item.json), None)
        self._epoch = marker
        self.replica.start_epoch(StreamId.parse(marker), kept)
        self._load(items)
        self._tip = tip
        self._wake()

    def _items(self, entries: list[tuple[Any, dict[bytes, bytes]]]) -> list[Item]:
        return [_entry_item(raw_id, fields) for raw_id, fields in entries if b"d" in fields]

    def _wake(self) -> None:
        if self._advanced is not None:
            self._advanced.set()
            self._advanced = None

    @staticmethod
    def _require(client: Redis | None) -> Redis:
        if client is None:
            raise RuntimeError("use the backend inside 'async with'")
        return client


def connector(url: str) -> Callable[..., Redis]:
    """Connection factory for ``redis://``, ``rediss://`` and ``redis+sentinel://`` URLs.

    Sentinel URLs name sentinels, the master and the db:
    ``redis+sentinel://host1:26379,host2:26379/<master-name>/<db>``.
    """
    if not url.startswith("redis+sentinel://"):
        return lambda **options: Redis.from_url(url, **options)
    hosts, _, path = url.removeprefix("redis+sentinel://").partition("/")
    master, _, db = path.partition("/")
    if not hosts or not master:
        raise ValueError(f"{url!r}: expected redis+sentinel://host:port[,host:port]/master[/db]")
    sentinels = [_host_port(part) for part in hosts.split(",")]

    def connect(**options: Any) -> Redis:
        sentinel = Sentinel(sentinels, socket_timeout=2, socket_connect_timeout=2)
        # Not `sentinel.master_for(**options)`: it hands every option to the connection
        # pool, and connections reject `single_connection_client` (a client option).
        single = bool(options.pop("single_connection_client", False))
        pool = SentinelConnectionPool(  # type: ignore[no-untyped-call]
            master,
            sentinel,
            is_master=True,
            db=int(db or 0),
            **{**sentinel.connection_kwargs, **options},
        )
        client = _SentinelMaster(sentinel, connection_pool=pool, single_connection_client=single)
        client.auto_close_connection_pool = True  # closing the client closes its pool
        return client

    return connect


class _SentinelMaster(Redis):
    """A client of the master a Sentinel names; closing it closes the Sentinel's own
    connections too (redis-py leaves them open)."""

    def __init__(self, sentinel: Sentinel, **options: Any) -> None:
        super().__init__(**options)
        self._sentinel = sentinel

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            await self._sentinel.aclose()


@dataclass(slots=True)
class _Batch:
    """A batch published here and not applied yet: the digest of the entry it follows,
    its items, the payload of its first entry (to tell it from another writer's entry under
    the same id), and its last entry."""

    follows: str
    items: list[Item]
    first: bytes
    tip: Entry


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host or text, int(port) if host else 26379)


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(response: Any) -> list[list[list[Any]]]:
    """The entries of each stream in an XREAD reply as the parser built it: a map of
    streams in RESP3, a list of (stream, entries) pairs in RESP2; None if none came."""
    if response is None:
        return []
    if isinstance(response, dict):
        return list(response.values())
    return [entries for _stream, entries in response]


def _encode(draft: Draft, ttl_ms: int) -> bytes:
    return orjson.dumps({"key": draft.key, "topic": draft.topic, "data": draft.data, "ttl": ttl_ms})


def _entry_item(raw_id: bytes | str, fields: dict[bytes, bytes]) -> Item:
    return _item(StreamId.trusted(raw_id), fields[b"d"])


def _item(id: StreamId, payload: bytes) -> Item:
    """An item as every instance builds it: times come from the id, Redis's clock."""
    fields = exactjson.loads(payload)  # numbers as the producer wrote them
    draft = Draft(fields["data"], fields["key"], fields["topic"], fields["ttl"])
    return Item.create(id, draft, created_at=id.ms, expires_at=id.ms + fields["ttl"])
