"""The browser dashboard: ``GET /`` serves the page, ``/dashboard/{name}`` its static assets.

The page is plain HTML, CSS and JavaScript from ``app/dashboard/static`` (no build step,
nothing from a CDN). Assets are read once and linked with a content hash (``?v=``), so a browser may
keep them for a year while the page itself is revalidated on every load.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.http.problems import Problem

router = APIRouter()

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "dashboard"
"""URL folder of the assets; the page links them relative to itself (``dashboard/app.js``)."""

_MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
_PAGE = "index.html"
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
# Scripts only from this origin (no inline script, no eval); streams and fetches may go to
# another origin, which is what the page's ?api= is for.
_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' http: https:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file as served: its bytes, media type and content hash."""

    body: bytes
    media_type: str
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    @classmethod
    def of(cls, body: bytes, suffix: str) -> Asset:
        return cls(body, _MEDIA_TYPES[suffix], hashlib.sha256(body).hexdigest()[:16])


@functools.cache
def assets() -> dict[str, Asset]:
    """Every asset by name, the page included, with the page's links made versioned."""
    found = {
        path.name: Asset.of(path.read_bytes(), path.suffix)
        for path in sorted(STATIC.iterdir())
        if path.suffix in _MEDIA_TYPES
    }
    page = found.pop(_PAGE).body.decode()
    for name, asset in found.items():
        page = page.replace(f"{{{{{name}}}}}", f"{PREFIX}/{name}?v={asset.digest}")
    found[_PAGE] = Asset.of(page.encode(), ".html")
    return found


def _not_modified(request: Request, asset: Asset) -> bool:
    tags = request.headers.get("if-none-match", "")
    return tags.strip() == "*" or asset.etag in (tag.strip() for tag in tags.split(","))


def _serve(
    request: Request, asset: Asset, cache_control: str, policy: str | None = None
) -> Response:
    common = {"ETag": asset.etag, "Cache-Control": cache_control, **_SECURITY_HEADERS}
    if policy is not None:
        common["Content-Security-Policy"] = policy
    if _not_modified(request, asset):
        return Response(status_code=304, headers=common)
    return Response(asset.body, media_type=asset.media_type, headers=common)


_PAGE_DESCRIPTION = (
    "The live dashboard (HTML). Its own query parameters are read by the page, not the "
    "server: `topic` (repeatable), `rows` (most rows shown, default 500) and `api` (the "
    "base URL of a Tailcast on another origin)."
)


def _content(*media_types: str) -> dict[str, Any]:
    return {media: {"schema": {"type": "string"}} for media in media_types}


@router.get(
    "/",
    summary="The browser dashboard",
    description=_PAGE_DESCRIPTION,
    response_class=Response,
    responses={
        200: {"description": "The page.", "content": _content("text/html")},
        304: {"description": "Not modified (If-None-Match)."},
    },
)
async def page(request: Request) -> Response:
    return _serve(request, assets()[_PAGE], _REVALIDATE, _CSP)


@router.get(
    f"/{PREFIX}/{{name}}",
    summary="A static asset of the dashboard",
    response_class=Response,
    responses={
        200: {
            "description": "The asset.",
            "content": _content("text/css", "text/javascript", "image/svg+xml"),
        },
        304: {"description": "Not modified (If-None-Match)."},
        404: {
            "description": "No such asset.",
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/ProblemDetails"}
                }
            },
        },
    },
)
async def asset(
    request: Request,
    name: str,
    v: Annotated[
        str | None,
        Query(description="The asset's content hash; when it matches, cacheable for a year."),
    ] = None,
) -> Response:
    found = assets().get(name)
    if found is None or name == _PAGE:
        raise Problem(404, f"No dashboard asset {name!r}.")
    return _serve(request, found, _IMMUTABLE if v == found.digest else _REVALIDATE)
