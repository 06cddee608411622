"""The API docs, ``GET /docs``: Swagger UI from the app's own copy, never from a CDN.

FastAPI's own page loads Swagger UI from a CDN (and breaks offline). This one takes
Swagger UI's files from the fastapi-swagger package, which ships each Swagger UI
release, and serves them under ``/docs/``, linked with a content hash so that a browser
keeps them. Every link is relative, so the page works under any root path.
"""

from __future__ import annotations

import functools
import hashlib
from importlib.resources import files

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from app.http.problems import Problem

router = APIRouter(include_in_schema=False)

_PACKAGE = "fastapi_swagger.resources"
_MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def _asset(name: str) -> tuple[bytes, str]:
    """A Swagger UI file's bytes and content hash (read once)."""
    body = files(_PACKAGE).joinpath(name).read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:16]


def _link(name: str) -> str:
    return f"docs/{name}?v={_asset(name)[1]}"


@router.get("/docs")
async def page() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="openapi.json",
        title="Tailcast API",
        swagger_js_url=_link("swagger-ui-bundle.js"),
        swagger_css_url=_link("swagger-ui.css"),
        swagger_favicon_url=_link("favicon-32x32.png"),
    )


@router.get("/docs/{name}")
async def asset(name: str, v: str | None = None) -> Response:
    if name not in _MEDIA_TYPES:
        raise Problem(404, f"No docs asset {name!r}.")
    body, digest = _asset(name)
    cache_control = _IMMUTABLE if v == digest else "no-cache"
    return Response(body, media_type=_MEDIA_TYPES[name], headers={"Cache-Control": cache_control})
