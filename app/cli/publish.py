"""``tailcast publish``: post one item, or many from a JSON Lines file, in batches."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn, TextIO

import anyio
import httpx
import orjson

from app.cli.common import (
    PUBLISH_TOKEN_ENV,
    Subcommands,
    add_url_argument,
    describe_error,
    env_token,
    non_negative_int,
    positive_int,
    say,
    service_url,
)
from streaming import exactjson
from tailcast.client import DEFAULT_BATCH_SIZE, TailcastClient
from tailcast.errors import ClientError, ProblemError, Unprocessable


def add_parser(commands: Subcommands) -> None:
    """Register ``publish`` with the ``tailcast`` command."""
    parser = commands.add_parser(
        "publish",
        help="publish one item, or many from a JSON Lines file",
        description="Publish DATA as one item and print it as stored; or, with --file, "
        "publish every line of a JSON Lines file (each an item object as POST /items takes "
        "it: data, and optionally key, topic, ttl) in batches, and print how many were "
        "stored. Stops at the first refused line, saying which and why. "
        f"Sends ${PUBLISH_TOKEN_ENV} as the bearer token.",
    )
    parser.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="the item's data: JSON, or else sent as a string ('hello' and '\"hello\"' alike)",
    )
    parser.add_argument(
        "--file",
        "-f",
        metavar="FILE",
        help="publish every line of this JSON Lines file ('-': standard input)",
    )
    parser.add_argument(
        "--topic", metavar="T", help="the item's topic (with --file: for lines without one)"
    )
    parser.add_argument("--key", metavar="K", help="the item's key (default: its id)")
    parser.add_argument(
        "--ttl",
        metavar="S",
        type=float,
        help="seconds to keep the item (with --file: for lines without one)",
    )
    parser.add_argument(
        "--skip",
        metavar="N",
        type=non_negative_int,
        default=0,
        help="with --file: skip the first N lines (to resume after a refused line)",
    )
    parser.add_argument(
        "--batch-size",
        metavar="N",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"with --file: items per request, at most the server's max_batch "
        f"(default: {DEFAULT_BATCH_SIZE})",
    )
    add_url_argument(parser)
    # Seconds between progress lines when stderr is not a terminal (tests make it short).
    parser.add_argument("--progress-interval", type=float, default=2.0, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``tailcast publish``; the exit status."""
    if (args.data is None) == (args.file is None):
        say("publish", "give either DATA or --file (see tailcast publish --help)")
        return 2
    if args.file is not None and args.key is not None:
        say("publish", "--key is for one item; with --file, give each line its own key")
        return 2
    if args.file is None and args.skip:
        say("publish", "--skip is for --file")
        return 2
    try:
        return anyio.run(_publish_one if args.file is None else _publish_file, args)
    except KeyboardInterrupt:
        return 130  # what was stored has been reported


def _client(args: argparse.Namespace) -> TailcastClient:
    return TailcastClient(
        service_url(args), token=env_token(PUBLISH_TOKEN_ENV), batch_size=args.batch_size
    )


async def _publish_one(args: argparse.Namespace) -> int:
    try:
        orjson.loads(args.data)  # JSON as the server takes it,
        data = json.loads(args.data)  # read with integers of any size kept exactly
    except orjson.JSONDecodeError:
        data = args.data  # not JSON: the text itself
    try:
        async with _client(args) as client:
            stored = await client.publish(data, key=args.key, topic=args.topic, ttl=args.ttl)
    except (ClientError, httpx.HTTPError) as exc:
        refused = isinstance(exc, ProblemError)
        say("publish", f"refused: {describe_error(exc)}" if refused else describe_error(exc))
        return 1
    print(stored.raw, flush=True)
    return 0


# Publishing a file.


class Stop(Exception):
    """Publishing stopped at ``line`` (1-based), for ``reason``."""

    def __init__(
        self,
        line: int,
        reason: str,
        *,
        about_line: bool = True,
        refused: bool = True,
        uncertain_until: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason
        self.refused = refused
        """Whether the line was refused (by the server, or here), not just not sent."""
        self.about_line = about_line
        """Whether the line itself is at fault (else e.g. the token, or the server)."""
        self.uncertain_until = uncertain_until
        """Set when lines ``line``..``uncertain_until`` may or may not have been stored."""


@dataclass
class _Batch:
    items: list[bytes] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def clear(self) -> None:
        self.items.clear()
        self.lines.clear()


class _Publisher:
    """Posts a file's lines in batches, counting what was stored."""

    def __init__(self, client: TailcastClient, progress: Progress) -> None:
        self.client = client
        self.progress = progress
        self.stored = 0
        self.batch = _Batch()

    async def flush(self) -> None:
        """Post the pending batch; raise `Stop` if the server refuses part of it."""
        batch = self.batch
        if not batch.items:
            return
        try:
            stored = await self.client.publish_encoded(batch.items)
        except ProblemError as exc:
            await self._refused(exc)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if _body_size(batch.items) > self.client.batch_bytes:  # sent in several requests
                raise self._lost(exc) from None
            # One request that never reached the server: nothing of it was stored.
            raise Stop(
                batch.lines[0],
                f"not sent: cannot connect ({describe_error(exc)})",
                about_line=False,
                refused=False,
            ) from None
        except httpx.HTTPError as exc:
            raise self._lost(exc) from None
        self.stored += len(stored)
        batch.clear()
        self.progress.update(self.stored)

    def _lost(self, exc: httpx.HTTPError) -> Stop:
        batch = self.batch
        return Stop(
            batch.lines[0],
            f"lost the connection while posting them ({describe_error(exc)})",
            about_line=False,
            uncertain_until=batch.lines[-1],
        )

    async def _refused(self, error: ProblemError) -> NoReturn:
        """Account for a refused batch: store the lines before the refused one, then stop."""
        batch = self.batch
        done = len(error.stored)  # earlier sub-batches of this batch were stored
        self.stored += done
        bad = _refused_index(error)
        if bad is None:  # not about one item (401, 503, ...): the batch's first line
            raise Stop(batch.lines[done], describe_error(error), about_line=False)
        bad += done
        reason = _item_errors(error, bad - done)
        if bad > done:
            # A batch is all or nothing: store the valid lines before the bad one, so the
            # count of lines stored before it is exact.
            self.batch = _Batch(batch.items[done:bad], batch.lines[done:bad])
            await self.flush()
        raise Stop(batch.lines[bad], reason)


def _body_size(items: list[bytes]) -> int:
    """Bytes of the JSON array of ``items``."""
    return sum(map(len, items)) + len(items) + 1


def _refused_index(error: ProblemError) -> int | None:
    """Index (within the refused batch) of the first item a 422 names, if it names one."""
    if not isinstance(error, Unprocessable):
        return None
    indexes = [
        loc[1]
        for entry in error.errors
        if isinstance(loc := entry.get("loc"), list)
        and len(loc) > 1
        and loc[0] == "body"
        and isinstance(loc[1], int)
    ]
    return min(indexes, default=None)


def _item_errors(error: ProblemError, index: int) -> str:
    """The validation errors of the batch's item ``index``, without the batch's part of loc."""
    messages = []
    for entry in error.errors:
        loc = entry.get("loc")
        if isinstance(loc, list) and loc[:2] == ["body", index]:
            where = ".".join(str(part) for part in loc[2:])
            messages.append(f"{where}: {entry.get('msg')}" if where else str(entry.get("msg")))
    return "; ".join(messages) or describe_error(error)


class Progress:
    """Progress on stderr: rich's bar, redrawn in place, on a terminal; else a plain line
    every ``interval`` seconds (no control sequences in a log or a pipe)."""

    def __init__(self, stream: TextIO, interval: float, total_bytes: int | None) -> None:
        self.stream = stream
        self.interval = interval
        self.bytes_read = 0
        self.start = time.monotonic()
        self._last = self.start
        self._in_place = _draws_in_place(stream)
        self._bar = _Bar(stream, total_bytes) if self._in_place else None

    def close(self) -> None:
        """Stop redrawing (after `finish`, or after an error: the cursor shown again)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def rate(self, stored: int) -> float:
        elapsed = time.monotonic() - self.start
        return stored / elapsed if elapsed > 0 else 0.0

    def update(self, stored: int) -> None:
        if self._bar is not None:
            self._bar.show(self.bytes_read, stored, self.rate(stored))
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._line(stored)

    def finish(self, stored: int) -> None:
        """Show the last figures; the bar stays on screen, above what is printed next."""
        if not self._in_place:
            self._line(stored)
        elif self._bar is not None:
            self._bar.show(self.bytes_read, stored, self.rate(stored))
            self.close()

    def _line(self, stored: int) -> None:
        say("publish", f"published {stored} items ({self.rate(stored):,.0f} items/s)")


def _draws_in_place(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that can redraw a line (not ``TERM=dumb``)."""
    return stream.isatty() and os.environ.get("TERM", "") not in ("dumb", "unknown")


class _Bar:
    """rich's progress bar: the share of the file read and the time left, the items stored
    so far and their rate. Reading a pipe (no size), the bar only shows activity."""

    def __init__(self, stream: TextIO, total_bytes: int | None) -> None:
        # Imported here: only a terminal pays for loading rich (`tail` never does).
        from rich import progress
        from rich.console import Console

        columns: list[progress.ProgressColumn] = [
            progress.BarColumn(),
            progress.TaskProgressColumn(),
            progress.TextColumn("{task.fields[stored]:,} items"),
            progress.TextColumn("{task.fields[rate]:,.0f} items/s"),
        ]
        if total_bytes is not None:  # as pip shows it
            columns += [progress.TextColumn("eta"), progress.TimeRemainingColumn()]
        self._progress = progress.Progress(
            *columns,
            console=Console(file=stream),
            redirect_stdout=False,
        )
        self._task = self._progress.add_task("publish", total=total_bytes, stored=0, rate=0.0)
        self._progress.start()

    def show(self, bytes_read: int, stored: int, rate: float) -> None:
        self._progress.update(self._task, completed=bytes_read, stored=stored, rate=rate)

    def close(self) -> None:
        self._progress.stop()


def _open(path: str) -> tuple[IO[bytes], int | None]:
    """The file (or stdin for ``-``) in binary, and its size if it is a regular file."""
    source: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        info = os.fstat(source.fileno())
    except (OSError, ValueError):
        return source, None
    return source, info.st_size if stat.S_ISREG(info.st_mode) else None


def _lines(source: IO[bytes], progress: Progress) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(source, 1):
        progress.bytes_read += len(line)
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]  # a UTF-8 byte order mark
        yield number, line


async def _publish_file(args: argparse.Namespace) -> int:
    try:
        source, size = _open(args.file)
    except OSError as exc:
        say("publish", f"cannot read {args.file}: {exc.strerror}")
        return 1
    name = "stdin" if args.file == "-" else args.file
    progress = Progress(sys.stderr, args.progress_interval, size)
    fill: dict[str, Any] = {}
    if args.topic is not None:
        fill["topic"] = args.topic
    if args.ttl is not None:
        fill["ttl"] = args.ttl
    try:
        async with _client(args) as client:
            publisher = _Publisher(client, progress)
            try:
                for number, line in _lines(source, progress):
                    if number <= args.skip:
                        continue
                    text = line.strip()
                    if not text:
                        continue
                    item = _parse_line(text)
                    if item is None:  # refused locally: store what came before it, then stop
                        await publisher.flush()
                        raise Stop(number, _line_problem(text))
                    missing = {k: v for k, v in fill.items() if k not in item}
                    encoded = orjson.dumps({**item, **missing}) if missing else text
                    publisher.batch.items.append(encoded)
                    publisher.batch.lines.append(number)
                    if len(publisher.batch.items) >= args.batch_size:
                        await publisher.flush()
                await publisher.flush()
            except Stop as stop:
                progress.finish(publisher.stored)
                _report_stop(name, stop, publisher.stored, args.skip)
                return 1
            except anyio.get_cancelled_exc_class():  # Ctrl-C, landing only while a batch is posted
                progress.finish(publisher.stored)
                lines = publisher.batch.lines
                if lines:
                    interrupted = Stop(
                        lines[0],
                        "interrupted while posting them",
                        about_line=False,
                        uncertain_until=lines[-1],
                    )
                    _report_stop(name, interrupted, publisher.stored, args.skip)
                raise
    finally:
        progress.close()
        if source is not sys.stdin.buffer:
            source.close()
    progress.finish(publisher.stored)
    elapsed = time.monotonic() - progress.start
    print(
        f"stored {publisher.stored} items in {elapsed:.2f} s "
        f"({progress.rate(publisher.stored):,.0f} items/s)",
        flush=True,
    )
    return 0


def _parse_line(text: bytes) -> dict[str, Any] | None:
    """The line's item object, or None if it is not a JSON object.

    Parsed as the server parses bodies (orjson), so a line it would refuse as JSON is
    caught here, with its line number, instead of failing a whole batch.
    """
    try:
        value = exactjson.loads(text)  # numbers kept exactly, for a line re-encoded
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _line_problem(text: bytes) -> str:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at column {exc.colno})"
    return f"not an item object but a JSON {type(value).__name__}"


def _report_stop(name: str, stop: Stop, stored: int, skip: int) -> None:
    first = f"line {skip + 1}" if skip else "the start"
    if stop.uncertain_until is None:
        verb = "refused: " if stop.refused else ""
        say("publish", f"{name}, line {stop.line}: {verb}{stop.reason}")
        say(
            "publish",
            f"stored {stored} items before line {stop.line} (from {first}); "
            f"nothing from line {stop.line} on was stored",
        )
        fix = "fix it and " if stop.about_line else ""
        again = f"{fix}run again with --skip {stop.line - 1}"
        say("publish", f"to go on from line {stop.line}, {again}")
        return
    say("publish", f"{name}, lines {stop.line}-{stop.uncertain_until}: {stop.reason}")
    say(
        "publish",
        f"stored {stored} items before line {stop.line} (from {first}); lines "
        f"{stop.line}-{stop.uncertain_until} may or may not have been stored (check GET /items)",
    )
    say(
        "publish",
        f"to go on: --skip {stop.line - 1} if they were not stored, "
        f"--skip {stop.uncertain_until} if they were",
    )
