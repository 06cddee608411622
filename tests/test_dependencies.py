"""What each package loads: the client only its own light dependencies, the core no web
framework (each checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

SERVER_ONLY = {"app", "cachetools", "fastapi", "orjson", "pydantic", "redis", "starlette"}
WEB = {"app", "fastapi", "httpx", "sse_starlette", "starlette", "tailcast", "uvicorn"}


def _loaded(*modules: str) -> set[str]:
    """The top-level packages importing ``modules`` loads."""
    listing = "print(*sorted({m.split('.')[0] for m in sys.modules}))"
    code = f"import sys, {', '.join(modules)}\n{listing}"
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(run.stdout.split())


def test_the_client_loads_none_of_the_servers_dependencies() -> None:
    assert _loaded("tailcast") & (SERVER_ONLY | {"streaming", "uvicorn", "sse_starlette"}) == set()


def test_the_core_loads_no_web_framework() -> None:
    core = ("streaming", "streaming.backends.memory", "streaming.backends.redis")
    assert _loaded(*core) & WEB == set()
