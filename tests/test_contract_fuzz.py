"""A contract a fuzzer can trust: schemathesis, fed openapi.yaml, finds nothing to report.

It generates requests from the contract (valid ones, and ones the contract rules out) and
checks every answer with all its checks: no 5xx, statuses, media types, headers and bodies
as documented, schema-valid requests accepted, invalid ones refused, 405 with ``Allow`` for
other methods, 401 without credentials. Every operation but the endless ``/stream`` is
exercised, a bounded number of cases each, with a fixed seed (explore further by hand:
``schemathesis run openapi.yaml --url http://127.0.0.1:8000 --checks all
--exclude-path /stream -H "Authorization: Bearer $TOKEN" -n 500``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import TOKEN, run_server

CONTRACT = Path(__file__).resolve().parent.parent / "openapi.yaml"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = 25  # per operation and phase: about 600 requests, 10-25 s on 2 cores


def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    with run_server() as server:
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                str(CONTRACT),
                f"--url={server.url}",
                "--checks=all",
                "--exclude-path=/stream",
                f"--max-examples={EXAMPLES}",
                "--seed=20261204",
                "--workers=1",
                "--request-timeout=5",
                f"--header=Authorization: Bearer {TOKEN}",
            ],
            cwd=tmp_path,  # schemathesis keeps its state in the working directory
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, f"schemathesis reports failures:\n{run.stdout[-20_000:]}"
