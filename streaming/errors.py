"""Exceptions raised by the streaming core."""

from __future__ import annotations


class TailcastError(Exception):
    """Base class of every error the core raises on purpose."""


class InvalidId(TailcastError, ValueError):
    """A stream id is not of the form ``<ms>-<seq>`` with two unsigned 64-bit numbers."""


class BackendUnavailable(TailcastError):
    """The backend cannot accept writes right now; the caller may retry later."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendClosed(TailcastError):
    """The backend is shutting down and takes no new work."""
