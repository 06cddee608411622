"""The bench's exceptions."""

from __future__ import annotations


class BenchError(Exception):
    """A benchmark could not run as planned (a server did not start, a worker failed...)."""


class HttpError(BenchError):
    """A malformed response, or a connection that closed under a request."""


class Unavailable(BenchError):
    """Something a comparison needs is not installed; the message says what to install."""
