"""Backends: where the log lives. The in-memory one is the default."""

from .base import Backend, Stats
from .memory import MemoryBackend

__all__ = ["Backend", "MemoryBackend", "Stats"]
