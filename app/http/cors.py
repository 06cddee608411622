"""CORS for the listed origins only, with refusals as problem documents.

Starlette's `CORSMiddleware` does the work for a listed origin. For any other origin this
adds no CORS header at all (Starlette's would still expose headers to it), and refuses a
preflight with a problem document; so does a listed origin's preflight for a method or a
header that is not allowed.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.http.problems import problem_response

_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class ListedOriginsCORS(CORSMiddleware):
    """`CORSMiddleware` that answers nothing but "no" to origins it does not list."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self.is_allowed_origin(origin):
                if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                    refusal = problem_response(
                        400,
                        f"Origin {origin!r} may not call this service (CORS).",
                        headers={"Vary": _VARY},
                    )
                    await refusal(scope, receive, send)
                else:
                    await self.app(scope, receive, _varying_by_origin(send))
                return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # The origin is listed: keep the CORS headers, so its browser can read the refusal.
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.startswith("access-control-") or name == "vary"
        }
        allowed = self.preflight_headers.get("Access-Control-Allow-Headers", "")
        detail = (
            f"{bytes(response.body).decode()}: this service allows the methods "
            f"{', '.join(self.allow_methods)} with the headers {allowed}."
        )
        return problem_response(400, detail, headers=headers)


def _varying_by_origin(send: Send) -> Send:
    """``send``, marking the response as one that depends on the Origin header (listed
    origins get CORS headers on it), so caches keep the versions apart."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (b"vary", b"Origin")]
        await send(message)

    return sending
