"""Exceptions the Tailcast client raises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ClientError(Exception):
    """Base class of the errors `TailcastClient` raises."""


class ProblemError(ClientError):
    """The server refused a request; carries the fields of its RFC 9457 problem document.

    Subclasses name the statuses a caller is likely to handle; any other refusal is a
    plain `ProblemError`. ``errors`` lists the validation errors (each with ``loc``,
    ``msg`` and ``type``) when the server gave them. ``stored`` is set by
    `TailcastClient.publish_many` to the items its earlier batches stored before this one
    was refused (batches are all or nothing); it is empty otherwise.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.errors: list[dict[str, Any]] = errors or []
        self.stored: Sequence[Any] = ()


class Unauthorized(ProblemError):
    """401: a missing or wrong bearer token."""


class PayloadTooLarge(ProblemError):
    """413: the request body is over the server's ``max_body_bytes``."""


class Unprocessable(ProblemError):
    """422: JSON, but not a valid item or batch; nothing was stored. See ``errors``."""


class Unavailable(ProblemError):
    """503: nothing was stored (shutting down, or the backend takes no writes).

    ``retry_after`` is the server's ``Retry-After`` in seconds (None if it sent none).
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, title, detail, type=type, errors=errors)
        self.retry_after = retry_after
