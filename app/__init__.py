"""Tailcast's HTTP service: the FastAPI app, its settings and the `tailcast` command."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tailcast")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = ["__version__"]
