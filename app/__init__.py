"""Tailcast's HTTP service: the FastAPI app, its settings and the `tailcast` command."""

import importlib.metadata as _metadata

try:
    __version__ = _metadata.version("tailcast")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = ["__version__"]
