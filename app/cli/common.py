"""What the client commands (`tailcast tail`, `tailcast publish`) share: settings, messages."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TypeAlias

import httpx

from tailcast.client import DEFAULT_URL
from tailcast.errors import ProblemError

URL_ENV = "TAILCAST_URL"
PUBLISH_TOKEN_ENV = "TAILCAST_PUBLISH_TOKEN"
SUBSCRIBE_TOKEN_ENV = "TAILCAST_SUBSCRIBE_TOKEN"

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What `argparse.ArgumentParser.add_subparsers` returns."""


def add_url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help=f"the service's base URL [env {URL_ENV}; default {DEFAULT_URL}]",
    )


def service_url(args: argparse.Namespace) -> str:
    """``--url``, else ``TAILCAST_URL``, else the default."""
    url: str = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    return url


def env_token(name: str) -> str | None:
    """A token from the environment; empty counts as unset."""
    return os.environ.get(name) or None


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def say(command: str, message: str) -> None:
    """A status or error line on stderr, prefixed with the command's name."""
    print(f"tailcast {command}: {message}", file=sys.stderr, flush=True)


def log_client_to_stderr(command: str) -> None:
    """Show the client's reconnection notices on stderr (without httpx's request log)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"tailcast {command}: %(message)s"))
    client_logger = logging.getLogger("tailcast.client")
    client_logger.addHandler(handler)
    client_logger.setLevel(logging.INFO)
    client_logger.propagate = False


def describe_error(error: Exception) -> str:
    """A one-line account of a refusal or a transport failure."""
    if isinstance(error, ProblemError):
        return f"{error.status} {error.title}: {error.detail}" if error.detail else str(error)
    if isinstance(error, httpx.TransportError):
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return str(error)
