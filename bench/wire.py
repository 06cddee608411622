"""How the load client speaks to a server under test: its address and its request formats.

Every published item's data is ``{"s": <seq>, "t": <time.time_ns() at send>}``: subscribers
check the sequence numbers for gaps and duplicates and measure latency from the stamp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

Kind = Literal["tailcast", "nchan", "bare"]
"""``bare``: the bare uvicorn app (`bench.bare`), which takes Tailcast's single-item POSTs."""


@dataclass(frozen=True, slots=True)
class Wire:
    """A server's address and dialect; picklable, so client processes get it as is."""

    kind: Kind
    host: str
    port: int
    token: str = ""

    @property
    def ready_marker(self) -> bytes:
        """What a stream sends once it is subscribed (Nchan opens with a ``: hi`` comment)."""
        return b": hi" if self.kind == "nchan" else b"event: live"

    @property
    def batches(self) -> bool:
        """Whether the server takes several items in one request (Nchan does not; the bare
        app is the ceiling for single items only)."""
        return self.kind == "tailcast"

    def subscribe(self, channel: str) -> bytes:
        path = f"/sub?ch={channel}" if self.kind == "nchan" else f"/stream?topic={channel}"
        return (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()

    def health(self) -> bytes:
        path = "/version" if self.kind == "nchan" else "/healthz"
        return f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()

    def publish(self, channel: str, seq: int, key: str | None = None) -> bytes:
        """A request publishing item ``seq``, stamped now."""
        if self.kind == "nchan":
            return self._post(b'{"s":%d,"t":%d}' % (seq, time.time_ns()), channel)
        return self._post(self._item(channel, seq, key, time.time_ns()))

    def publish_batch(self, channel: str, seqs: range, key_space: int | None = None) -> bytes:
        """A request publishing items ``seqs`` at once, keyed ``k<seq % key_space>``.

        Without ``key_space`` every item has a key of its own (``k<seq>``).
        """
        if not self.batches:
            raise ValueError(f"{self.kind} takes one item per request")
        now = time.time_ns()
        space = key_space or (seqs.stop + 1)
        items = [self._item(channel, seq, f"k{seq % space}", now) for seq in seqs]
        return self._post(b"[" + b",".join(items) + b"]")

    @staticmethod
    def _item(channel: str, seq: int, key: str | None, stamp: int) -> bytes:
        data = b'"data":{"s":%d,"t":%d}' % (seq, stamp)
        head = b'{"topic":"%s",' % channel.encode()
        if key is not None:
            head += b'"key":"%s",' % key.encode()
        return head + data + b"}"

    def _post(self, body: bytes, channel: str | None = None) -> bytes:
        path = "/items" if channel is None else f"/pub?ch={channel}"
        auth = "" if self.kind == "nchan" else f"Authorization: Bearer {self.token}\r\n"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body
