"""The ``tailcast`` command."""

from __future__ import annotations

import argparse
import logging
import math
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any, TypeAlias

from pydantic import SecretStr, ValidationError
from pydantic_settings import CliSettingsSource

from app import __version__
from app.cli import publish, tail
from app.settings import Settings

_Flags: TypeAlias = CliSettingsSource[argparse.Namespace]


def main(argv: Sequence[str] | None = None) -> int:
    parser, flags = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(flags(parsed_args=args))
    if hasattr(args, "handler"):  # the client commands: tail, publish
        status: int = args.handler(args)
        return status
    parser.print_help()
    return 2


def _parser() -> tuple[argparse.ArgumentParser, _Flags]:
    """The ``tailcast`` parser, and the source of `Settings` that reads its ``serve`` flags."""
    parser = argparse.ArgumentParser(
        prog="tailcast", description="Replay-then-live Server-Sent Events over a TTL cache."
    )
    parser.add_argument("--version", action="version", version=f"tailcast {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the service",
        description="Run the service. Every flag can also be set as TAILCAST_<NAME>.",
    )
    # pydantic-settings adds a flag per setting, its help from the field: type, description,
    # default and variable. Values are validated by Settings, not by argparse.
    flags: _Flags = CliSettingsSource(
        Settings,
        root_parser=serve,
        cli_kebab_case=True,
        cli_show_env_vars=True,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        add_argument_method=_add_argument,
    )
    tail.add_parser(commands)
    publish.add_parser(commands)
    return parser, flags


def _add_argument(parser: argparse.ArgumentParser, *names: str, **options: Any) -> argparse.Action:
    """argparse's ``add_argument``, showing a secret's value as ``str`` (not ``SecretStr``)."""
    if options.get("metavar") == "SecretStr":
        options["metavar"] = "str"
    return parser.add_argument(*names, **options)


def _serve(flags: _Flags) -> int:
    # Imported here: `tail` and `publish` should not pay for loading the server.
    from app.http.application import create_app
    from app.server.runner import build_server

    given: dict[str, Any] = flags()  # the flags given, by setting name; `None` for unset
    try:
        settings = Settings(_cli_settings_source=flags)
    except ValidationError as exc:
        for error in exc.errors():
            flag = "--" + "-".join(str(part) for part in error["loc"]).replace("_", "-")
            print(f"tailcast serve: {flag}: {error['msg']}", file=sys.stderr)
        return 2
    if settings.workers > 1 and settings.backend == "memory":
        print(
            "tailcast serve: --workers > 1 needs a shared log: each worker's in-memory cache "
            "would diverge. Use --backend redis://... (see README, 'Several instances').",
            file=sys.stderr,
        )
        return 2
    generated = settings.publish_token is None
    if generated:
        settings.publish_token = SecretStr(secrets.token_urlsafe(24))
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s: %(message)s")
    _banner(settings, generated)
    if settings.workers > 1:
        _serve_workers(settings, given)
        return 0
    app = create_app(settings)
    build_server(app, host=settings.host, port=settings.port, log_level=settings.log_level).run()
    return 0


def _serve_workers(settings: Settings, given: dict[str, Any]) -> None:
    """Run uvicorn's process manager; workers build the app from the environment."""
    import uvicorn

    from app.server.protocols import http_protocol

    assert settings.publish_token is not None
    for name, value in given.items():
        variable = f"TAILCAST_{name.upper()}"
        if value is None:  # e.g. --max-connections None: unset, whatever the variable says
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = str(value)
    os.environ["TAILCAST_PUBLISH_TOKEN"] = settings.publish_token.get_secret_value()
    uvicorn.run(
        "app.http.application:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace) + 1,
        http=http_protocol(settings.http),
    )


def _banner(settings: Settings, generated: bool) -> None:
    assert settings.publish_token is not None
    token = settings.publish_token.get_secret_value()
    base = f"http://{settings.host}:{settings.port}"
    backend = "memory" if settings.backend == "memory" else "redis"
    workers = f", {settings.workers} workers" if settings.workers > 1 else ""
    lines = [f"Tailcast {__version__}: {base} (backend: {backend}{workers})"]
    if generated:
        lines += [
            "Publish token (generated; set TAILCAST_PUBLISH_TOKEN to choose one):",
            f"    {token}",
            "Publish:",
            f"    curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\",
            f'         -d \'{{"key": "k", "data": 1}}\' {base}/items',
        ]
    lines += ["Subscribe:", f"    curl -N {base}/stream"]
    print("\n".join(lines), flush=True)
