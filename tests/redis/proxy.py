"""A TCP proxy for fault tests: one instance's way to Redis and the Sentinels, which the
test can cut (every connection dropped, new ones refused) and heal, as a partition would.

Sentinels tell clients where the master is, and the client then connects there itself; to
keep the instance behind the proxy, the proxy rewrites the master's port in what the
Sentinels answer (``SENTINEL MASTERS``, which redis-py asks) to the proxy's own port for
that server. Proxy ports are chosen with as many digits as the real ones, so the rewrite
keeps every RESP length prefix valid.

The proxy runs its own event loop in a thread, so its forwarding does not wait for the
test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

_CHUNK = 65536


class PortRewriter:
    """Replaces RESP bulk strings holding a mapped port (``$5\\r\\n6379x\\r\\n``) in a byte
    stream cut at arbitrary points: a tail that could begin a match is held back until the
    next chunk (a complete reply never ends inside a bulk string's header)."""

    def __init__(self, ports: Mapping[int, int]) -> None:
        self._swaps: dict[bytes, bytes] = {}
        for real, proxied in ports.items():
            if len(str(real)) != len(str(proxied)):
                raise ValueError(f"ports {real} and {proxied} differ in length")
            self._swaps[_bulk(real)] = _bulk(proxied)
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        text = self._held + data
        for real, proxied in self._swaps.items():
            text = text.replace(real, proxied)
        keep = self._partial_tail(text)
        self._held = text[len(text) - keep :] if keep else b""
        return text[: len(text) - keep]

    def _partial_tail(self, text: bytes) -> int:
        longest = 0
        for pattern in self._swaps:
            for size in range(len(pattern) - 1, longest, -1):
                if text.endswith(pattern[:size]):
                    longest = size
                    break
        return longest


def _bulk(port: int) -> bytes:
    digits = str(port).encode()
    return b"$%d\r\n%s\r\n" % (len(digits), digits)


def _listen_like(port: int) -> socket.socket:
    """A listening loopback socket on a free port with as many digits as ``port``."""
    for _ in range(200):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        if len(str(sock.getsockname()[1])) == len(str(port)):
            sock.listen(128)
            sock.setblocking(False)
            return sock
        sock.close()
    raise AssertionError(f"no free port with as many digits as {port}")


@dataclass
class _Route:
    target: int
    sock: socket.socket
    rewrite: bool  # a Sentinel: rewrite master ports in its answers

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port


class Proxy:
    """Routes to the given Redis servers and Sentinels (by port) through loopback ports of
    its own. Use as a context manager; `cut` and `heal` may be called from any thread."""

    def __init__(self, servers: list[int], sentinels: list[int]) -> None:
        self.servers = servers
        self.sentinels = sentinels
        self.refused = 0
        """Connections refused while cut (the instance kept trying)."""
        self._routes: dict[int, _Route] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._cut = False
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def port(self, target: int) -> int:
        """The proxy's port leading to ``target`` (a server's or a Sentinel's port)."""
        return self._routes[target].port

    def sentinel_url(self, master: str, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{self.port(p)}" for p in self.sentinels)
        return f"redis+sentinel://{hosts}/{master}/{db}"

    def __enter__(self) -> Proxy:
        for target in self.servers:
            self._routes[target] = _Route(target, _listen_like(target), rewrite=False)
        for target in self.sentinels:
            self._routes[target] = _Route(target, _listen_like(target), rewrite=True)
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop = self._loop
        if loop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            self._thread.join(10)
        for route in self._routes.values():
            route.sock.close()

    def cut(self) -> None:
        """Drop every connection at once and refuse new ones until `heal`."""
        self._call(self._cut_now)

    def heal(self) -> None:
        """Accept and forward connections again."""
        self._call(self._heal_now)

    # -- inside the proxy's loop ----------------------------------------------------------

    def _run(self, started: Future[None]) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = stopped = asyncio.Event()
            try:
                servers = [
                    await asyncio.start_server(self._handler(route), sock=route.sock)
                    for route in self._routes.values()
                ]
            except BaseException as exc:
                started.set_exception(exc)
                raise
            started.set_result(None)
            await stopped.wait()
            for server in servers:
                server.close()
            self._cut_now()  # every forwarding task ends with its connection
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=5)

        asyncio.run(main())

    async def _shutdown(self) -> None:
        assert self._stopped is not None
        self._stopped.set()

    def _call(self, action: Callable[[], None]) -> None:
        assert self._loop is not None, "use the proxy as a context manager"

        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def _cut_now(self) -> None:
        self._cut = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def _heal_now(self) -> None:
        self._cut = False

    def _handler(
        self, route: _Route
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await self._forward(route, reader, writer)
            finally:
                self._tasks.discard(task)

        return handle

    async def _forward(
        self, route: _Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", route.target
            )
        except OSError:
            writer.transport.abort()  # the server is down: so is the way to it
            return
        if self._cut:  # cut while connecting
            upstream_writer.transport.abort()
            writer.transport.abort()
            return
        pair = {writer, upstream_writer}
        self._open |= pair
        rewriter = PortRewriter(self._server_ports()) if route.rewrite else None
        try:
            await asyncio.gather(
                _pump(reader, upstream_writer, None),
                _pump(upstream_reader, writer, rewriter),
            )
        finally:
            self._open -= pair
            for end in pair:
                end.transport.abort()

    def _server_ports(self) -> dict[int, int]:
        return {target: self._routes[target].port for target in self.servers}


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rewriter: PortRewriter | None
) -> None:
    """Copy until either side ends; then end the other side too."""
    try:
        while data := await reader.read(_CHUNK):
            if rewriter is not None:
                data = rewriter.feed(data)
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort()
