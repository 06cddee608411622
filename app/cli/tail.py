"""``tailcast tail``: print a stream's items as they arrive, resuming by itself."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import datetime
from typing import TextIO

import anyio
import httpx

from app.cli.common import (
    SUBSCRIBE_TOKEN_ENV,
    Subcommands,
    add_url_argument,
    describe_error,
    env_token,
    log_client_to_stderr,
    positive_int,
    say,
    service_url,
)
from tailcast import LiveEvent, ResetEvent, StoredItem, TailcastClient, id_key
from tailcast.errors import ClientError

_FLUSH_EVERY = 1000
"""While replaying, flush the output every this many items (live items are flushed at once)."""


def add_parser(commands: Subcommands) -> None:
    """Register ``tail`` with the ``tailcast`` command."""
    parser = commands.add_parser(
        "tail",
        help="print items as they arrive",
        description="Print the stream's items, one line each: the cached ones in id order, "
        "then live ones. Reconnects and resumes by itself (no item twice); reports a reset "
        "(items that were lost) and 'caught up' (the switch to live) on stderr. Ctrl-C ends it. "
        f"Sends ${SUBSCRIBE_TOKEN_ENV} as a bearer token when set.",
    )
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="T",
        help="only this topic, or every topic this pattern matches ('prices.*': '*' matches "
        "any run of characters); repeatable; default: every topic",
    )
    parser.add_argument("--since", metavar="ID", type=_stream_id, help="only items after this id")
    parser.add_argument("--limit", metavar="N", type=positive_int, help="exit after N items")
    parser.add_argument(
        "--last",
        metavar="N",
        type=positive_int,
        help="replay only the newest N cached items (after --since), then go live",
    )
    add_url_argument(parser)
    parser.add_argument(
        "--format",
        choices=["json", "pretty"],
        default="json",
        help="json: each item object exactly as the server sent it (for jq); "
        "pretty: time, topic, key, id and data (default: json)",
    )
    parser.set_defaults(handler=run)


def _stream_id(text: str) -> str:
    try:
        id_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def run(args: argparse.Namespace) -> int:
    """Run ``tailcast tail``; the exit status."""
    log_client_to_stderr("tail")
    try:
        return anyio.run(_tail, args, sys.stdout)
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a tail is meant to end
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter's final
        # flush of stdout from complaining again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


async def _tail(args: argparse.Namespace, out: TextIO) -> int:
    render = _pretty if args.format == "pretty" else _json
    interactive = out.isatty()
    client = TailcastClient(service_url(args), subscriber_token=env_token(SUBSCRIBE_TOKEN_ENV))
    try:
        async with (
            client,
            client.subscribe(args.topic, args.since, args.limit, last=args.last) as events,
        ):
            unflushed = 0
            async for event in events:
                if isinstance(event, StoredItem):
                    out.write(render(event) + "\n")
                    unflushed += 1
                    if interactive or events.caught_up or unflushed >= _FLUSH_EVERY:
                        out.flush()
                        unflushed = 0
                    continue
                out.flush()
                unflushed = 0
                if isinstance(event, ResetEvent):
                    say("tail", _reset_message(event))
                elif isinstance(event, LiveEvent):
                    say("tail", f"caught up (live after {event.cutoff or 'nothing'})")
    except (ClientError, httpx.HTTPError) as exc:
        out.flush()
        say("tail", describe_error(exc))
        return 1
    finally:
        with contextlib.suppress(BrokenPipeError):
            out.flush()
    return 0


def _reset_message(event: ResetEvent) -> str:
    gone = f"items after {event.requested}" if event.requested else "items"
    return (
        f"reset ({event.reason}): {gone} are gone; "
        f"oldest cached: {event.oldest or 'none'}; what follows is what the server has"
    )


def _json(item: StoredItem) -> str:
    return item.to_json()  # the stream event's data line, as the server sent it


def _pretty(item: StoredItem) -> str:
    when = datetime.fromtimestamp(item.created_at / 1000).astimezone()
    stamp = when.strftime("%Y-%m-%d %H:%M:%S") + f".{item.created_at % 1000:03d}"
    data = json.dumps(item.data, separators=(",", ":"), ensure_ascii=False)
    return f"{stamp}  {item.topic}  {item.key}  {item.id}  {data}"
