"""`tailcast publish` and `tailcast tail` end to end: real processes against a real server."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import queue
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.client.helpers import free_port
from tests.support import RunningServer, run_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(server: RunningServer) -> dict[str, str]:
    """The environment the commands read: the server's URL and the publish token."""
    return {**os.environ, "TAILCAST_URL": server.url, "TAILCAST_PUBLISH_TOKEN": server.token}


def tailcast(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def numbered(count: int) -> list[dict[str, Any]]:
    """Items with distinct data; every third has a key, every fifth a topic."""
    items: list[dict[str, Any]] = []
    for n in range(count):
        item: dict[str, Any] = {"data": {"n": n, "text": f"item {n}"}}
        if n % 3 == 0:
            item["key"] = f"k{n}"
        if n % 5 == 0:
            item["topic"] = "fifths"
        items.append(item)
    return items


def cached(server: RunningServer) -> list[dict[str, Any]]:
    """Every item the server caches, oldest id first."""
    response = httpx.get(f"{server.url}/items", timeout=10)
    response.raise_for_status()
    body: list[dict[str, Any]] = response.json()
    return body


def test_publish_file_then_tail_prints_those_items_in_order(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    items = numbered(10_000)
    published = tailcast("publish", "--file", str(jsonl(tmp_path / "items.jsonl", items)), env=env)
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith("stored 10000 items")

    tailed = tailcast("tail", "--limit", "10000", env=env)
    assert tailed.returncode == 0, tailed.stderr
    lines = tailed.stdout.splitlines()
    assert [json.loads(line)["data"] for line in lines] == [item["data"] for item in items]
    # Each line is the item exactly as the server sends it: compact JSON, ready for jq.
    assert [json.loads(line) for line in lines] == cached(server)
    assert all(
        line == json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=False)
        for line in lines
    )


def test_publish_file_stops_at_a_refused_line(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    items = numbered(10_000)
    items[5000]["ttl"] = -1  # line 5001
    result = tailcast("publish", "--file", str(jsonl(tmp_path / "items.jsonl", items)), env=env)
    assert result.returncode == 1
    assert "items.jsonl, line 5001: refused: ttl: " in result.stderr
    assert "stored 5000 items before line 5001" in result.stderr
    assert "--skip 5000" in result.stderr
    stored = cached(server)
    assert len(stored) == 5000
    assert stored[-1]["data"] == items[4999]["data"]


def test_refused_line_inside_a_batch_stores_the_lines_before_it(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    items: list[dict[str, Any]] = [{"data": n} for n in range(100)]
    items[44]["colour"] = "red"  # line 45, in the second batch of 30: an unknown field
    path = jsonl(tmp_path / "items.jsonl", items)
    result = tailcast("publish", "--file", str(path), "--batch-size", "30", env=env)
    assert result.returncode == 1
    assert "line 45: refused: colour: " in result.stderr
    assert "stored 44 items before line 45" in result.stderr
    assert [item["data"] for item in cached(server)] == list(range(44))


def test_publish_file_stops_at_a_line_that_is_not_json(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"data": 1}\n\n{"data": 2}\n{"data": 3,}\n{"data": 4}\n')
    result = tailcast("publish", "--file", str(path), env=env)
    assert result.returncode == 1
    assert "line 4: refused: not JSON" in result.stderr
    assert "stored 2 items before line 4" in result.stderr
    assert [item["data"] for item in cached(server)] == [1, 2]


def test_publish_file_skips_lines(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "items.jsonl", [{"data": n} for n in range(10)])
    result = tailcast("publish", "--file", str(path), "--skip", "7", env=env)
    assert result.returncode == 0, result.stderr
    assert [item["data"] for item in cached(server)] == [7, 8, 9]


def test_publish_file_reads_stdin_and_fills_in_the_topic(
    server: RunningServer, env: dict[str, str]
) -> None:
    lines = '{"data": 1}\n{"data": 2, "topic": "own"}\n'
    result = tailcast("publish", "--file", "-", "--topic", "given", env=env, stdin=lines)
    assert result.returncode == 0, result.stderr
    assert [(item["data"], item["topic"]) for item in cached(server)] == [(1, "given"), (2, "own")]


def test_publish_file_reports_progress_on_stderr(
    server: RunningServer, env: dict[str, str], tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "items.jsonl", numbered(3000))
    # Not a terminal, whatever the environment says: plain lines, no control sequences.
    env = {**env, "TERM": "xterm-256color", "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}
    result = tailcast(
        "publish", "--file", str(path), "--batch-size", "500", "--progress-interval", "0", env=env
    )
    assert result.returncode == 0, result.stderr
    progress = re.findall(r"^tailcast publish: published (\d+) items \([\d,]+ items/s\)$",
                          result.stderr, re.MULTILINE)  # fmt: skip
    assert [int(count) for count in progress][-1] == 3000
    assert len(progress) >= 6  # one per batch with an interval of 0, and a last one
    assert "\x1b" not in result.stderr
    assert "\r" not in result.stderr


def test_publish_file_on_a_terminal_redraws_a_bar_that_fits_the_width(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "items.jsonl", numbered(3000))
    result, screen = _on_a_terminal(
        "publish", "--file", str(path), "--batch-size", "500", env=env, columns=50
    )
    assert result.returncode == 0, screen
    assert result.stdout.startswith("stored 3000 items")
    # What the terminal shows: each redraw returns to the start of the line (\r).
    frames = [f for f in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)) if f]
    assert all(len(frame) <= 50 for frame in frames), frames  # so it never wraps
    assert "100%" in frames[-1]
    assert "3,000 items" in frames[-1]


def _on_a_terminal(
    *args: str, env: dict[str, str], columns: int
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``tailcast`` with stderr on a pseudo-terminal ``columns`` wide: the run (stdout
    captured) and everything written to the terminal."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    unset = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    env = {name: value for name, value in env.items() if name not in unset}
    written: list[bytes] = []

    def read() -> None:
        with contextlib.suppress(OSError):  # EIO once the command has exited
            while chunk := os.read(primary, 65536):
                written.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env={**env, "TERM": "xterm-256color"},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
        ) as process:
            os.close(secondary)
            stdout, _ = process.communicate(timeout=60)
        reader.join(timeout=10)
    finally:
        os.close(primary)
    run = subprocess.CompletedProcess(process.args, process.returncode, stdout, "")
    return run, b"".join(written).decode()


def test_publish_sends_text_that_is_not_json_as_a_string(env: dict[str, str]) -> None:
    result = tailcast("publish", "--topic", "notes", "--key", "k", "hello world", env=env)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    assert (stored["data"], stored["topic"], stored["key"]) == ("hello world", "notes", "k")


def test_publish_parses_data_as_json(env: dict[str, str]) -> None:
    result = tailcast("publish", "--ttl", "60", '{"usd": 97000}', env=env)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    assert stored["data"] == {"usd": 97000}
    assert stored["expires_at"] - stored["created_at"] == 60_000


def test_publish_with_a_wrong_token_says_it_was_refused(env: dict[str, str]) -> None:
    result = tailcast("publish", "1", env={**env, "TAILCAST_PUBLISH_TOKEN": "wrong"})
    assert result.returncode == 1
    assert "refused: 401 Unauthorized" in result.stderr


def test_tail_pretty_prints_time_topic_key_id_and_data(
    server: RunningServer, env: dict[str, str]
) -> None:
    tailcast("publish", "--topic", "prices", "--key", "btc", '{"usd": 1}', env=env)
    result = tailcast("tail", "--limit", "1", "--format", "pretty", env=env)
    assert result.returncode == 0, result.stderr
    [item] = cached(server)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  prices  btc  " + item["id"] + r'  \{"usd":1\}\n',
        result.stdout,
    )


def _lines_of(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue[str], text: str, timeout: float = 20) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"no line with {text!r} within {timeout} s: {seen}")


def test_tail_reports_caught_up_and_exits_zero_on_sigint(env: dict[str, str]) -> None:
    tailcast("publish", "before", env=env)
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "tail"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = _lines_of(process.stdout), _lines_of(process.stderr)
        _wait_for_line(stderr, "caught up")
        tailcast("publish", "live", env=env)
        _wait_for_line(stdout, '"data":"live"')  # live items are printed at once
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        time.sleep(0.1)  # let the pumps drain the pipes
        rest = "".join(stderr.queue)
        assert "Traceback" not in rest
        assert "KeyboardInterrupt" not in rest
    finally:
        _end(process)


def test_tail_resumes_by_itself_when_the_server_restarts() -> None:
    port = free_port()
    settings = {"port": port, "retry_ms": 50, "shutdown_grace": 1}
    with contextlib.ExitStack() as cleanup:
        with run_server(**settings) as first:
            env = {**os.environ, "TAILCAST_URL": first.url, "TAILCAST_PUBLISH_TOKEN": first.token}
            tailcast("publish", "before", env=env)
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "tail"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            cleanup.callback(_end, process)
            stdout, stderr = _lines_of(process.stdout), _lines_of(process.stderr)
            _wait_for_line(stderr, "caught up")
        with run_server(**settings):  # the same port, an empty history
            _wait_for_line(stderr, "reset (restarted)")
            tailcast("publish", "after", env=env)
            printed = _wait_for_line(stdout, '"data":"after"')
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
    assert [json.loads(line)["data"] for line in printed] == ["before", "after"]


def _end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def test_tail_last_prints_the_newest_items(server: RunningServer, env: dict[str, str]) -> None:
    published = tailcast(
        "publish", "--file", "-", env=env, stdin="".join(f'{{"data": {n}}}\n' for n in range(4))
    )
    assert published.returncode == 0, published.stderr
    tailed = tailcast("tail", "--last", "2", "--limit", "2", env=env)
    assert tailed.returncode == 0, tailed.stderr
    assert [json.loads(line) for line in tailed.stdout.splitlines()] == cached(server)[2:]


@pytest.mark.parametrize("command", ["serve", "publish", "tail"])
def test_help_describes_every_command(command: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", command, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "usage: " in run.stdout


def test_serve_help_gives_each_flag_its_type_default_and_variable() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--help"],
        env={**os.environ, "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())  # unwrapped
    assert (
        "--port int Port to bind (0 picks a free one). (default: 8000) [env: TAILCAST_PORT]" in text
    )
    assert "--http {auto,httptools,h11} " in text
    assert "--publish-token str " in text  # not its type's name, SecretStr
    missing = [
        name
        for name in Settings.model_fields
        if f"--{name.replace('_', '-')} " not in text
        or f"[env: TAILCAST_{name.upper()}]" not in text
    ]
    assert not missing


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "eighty"], "tailcast serve: --port: Input should be a valid integer"),
        (
            ["--http", "spdy"],
            "tailcast serve: --http: Input should be 'auto', 'httptools' or 'h11'",
        ),
        (["--max-streams", "0"], "tailcast serve: --max-streams: Input should be greater than"),
    ],
)
def test_serve_refuses_an_invalid_value_naming_its_flag(flags: list[str], message: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", *flags],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2
    assert message in run.stderr
