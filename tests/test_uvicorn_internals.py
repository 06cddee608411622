"""The fence around uvicorn's internals (`app.server.uvicorn_internals`): the installed uvicorn is
one it was checked against, its httptools streams take the fan-out, and streams served any
other way (h11, or a cycle lacking what the fence reads) go through `EventSourceResponse`;
its protocols have the hooks the connection limits are called from, and without them run as
uvicorn made them."""

from __future__ import annotations

import socket
import time
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from packaging.requirements import Requirement
from packaging.version import Version
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from app.server import uvicorn_internals
from app.server.uvicorn_internals import _CYCLE_ATTRIBUTES, CHECKED, HOOKED, usable_cycle
from tests.http.helpers import events, publish, take, until_live
from tests.support import run_server

ROOT = Path(__file__).resolve().parents[1]


def _uvicorn_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    server = project["optional-dependencies"]["server"]
    (spec,) = [r for r in server if r.startswith("uvicorn")]
    return Requirement(spec.split("#")[0])


def test_the_installed_uvicorn_is_within_the_bound_the_fence_was_checked_for() -> None:
    installed = Version(version("uvicorn"))
    assert installed in _uvicorn_requirement().specifier
    first, last = (Version(v) for v in CHECKED)
    assert first <= installed
    assert (installed.major, installed.minor) <= (last.major, last.minor)


def test_the_bound_ends_right_after_the_last_release_checked() -> None:
    last = Version(CHECKED[1])
    upper = [s for s in _uvicorn_requirement().specifier if s.operator == "<"]
    assert [s.version for s in upper] == [f"{last.major}.{last.minor + 1}"]


def _cycle() -> Any:
    """A real httptools request cycle, as uvicorn makes one per request."""
    return RequestResponseCycle(
        scope={},  # type: ignore[typeddict-item]
        transport=None,  # type: ignore[arg-type]
        flow=type("Flow", (), {"write_paused": False})(),
        logger=None,  # type: ignore[arg-type]
        access_logger=None,  # type: ignore[arg-type]
        access_log=False,
        default_headers=[],
        message_event=None,  # type: ignore[arg-type]
        expect_100_continue=False,
        keep_alive=True,
        on_response=lambda: None,
    )


def test_the_fence_accepts_the_installed_httptools_cycle() -> None:
    assert usable_cycle(_cycle())


@pytest.mark.parametrize("missing", _CYCLE_ATTRIBUTES)
def test_a_cycle_lacking_an_attribute_the_fence_reads_is_refused(missing: str) -> None:
    cycle = _cycle()
    delattr(cycle, missing)
    assert not usable_cycle(cycle)


@pytest.mark.parametrize(("http", "fanned_out"), [("httptools", 1), ("h11", 0)])
def test_only_httptools_streams_are_written_by_the_fan_out(http: str, fanned_out: int) -> None:
    with (
        run_server(http=http) as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
        connect_sse(client, "GET", "/stream") as source,
    ):
        stream = events(source.iter_sse())
        until_live(stream)
        posted = publish(client, server.auth, {"data": 1})
        assert take(stream, 1)[0].id == posted["id"]
        assert len(server.service.fanout) == fanned_out
        assert len(server.service.streams) == 1


def test_the_installed_uvicorns_protocols_have_the_hooks_the_limits_are_called_from() -> None:
    assert HOOKED


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("hooked", [True, False], ids=["hooked", "without_hooks"])
def test_without_the_hooks_the_protocols_run_as_uvicorn_made_them(
    monkeypatch: pytest.MonkeyPatch, http: str, hooked: bool
) -> None:
    # The fallback for a uvicorn whose protocols lack the hooks: no request deadline (a
    # silent connection stays open), and the app still answers.
    monkeypatch.setattr(uvicorn_internals, "HOOKED", hooked)
    with run_server(http=http, request_timeout=0.3) as server:
        port = httpx.URL(server.url).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
            time.sleep(1)
            silent.settimeout(0.5)
            try:
                closed = silent.recv(1) == b""
            except TimeoutError:
                closed = False
            assert closed is hooked
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/healthz").status_code == 200
