"""RFC 9457 problem details: every error the API returns is ``application/problem+json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = errors


def problem_response(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return Response(orjson.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    """Route every error, the framework's own included, through `problem_response`."""

    async def on_problem(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, exc.detail, headers=exc.headers, errors=exc.errors)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
            detail = f"No route for {request.url.path}."
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
            # The framework names only the first route matching the path; list them all.
            allowed = _allowed_methods(request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return problem_response(exc.status_code, str(detail), headers=headers)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        # Only query, path and header parameters reach here (bodies are parsed by hand):
        # a malformed parameter is a bad request, not an unprocessable entity.
        assert isinstance(exc, RequestValidationError)
        errors = [_error(e) for e in exc.errors()]
        return problem_response(400, describe(errors), errors=errors)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route fully serves at the request's path (RFC 9110's ``Allow``)."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        # A fresh scope per probe: the request's own carries the framework's routing state.
        probe = {
            "type": "http",
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "method": method,
        }
        if any(route.matches(dict(probe))[0] is Match.FULL for route in routes):
            allowed.append(method)
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")  # every GET route answers HEAD
    return allowed


def _error(error: Mapping[str, Any]) -> dict[str, Any]:
    return {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}


def describe(errors: Sequence[Mapping[str, Any]]) -> str:
    """One line a person can act on: the first few errors with where they are."""
    parts = [f"{_where(e['loc'])}: {e['msg']}" for e in errors[:3]]
    more = len(errors) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _where(loc: Sequence[Any]) -> str:
    text = str(loc[0]) if loc else ""
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text
