"""The application factory."""

from __future__ import annotations

import inspect
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sse_starlette.sse import AppStatus
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app import __version__
from app.dashboard import routes as dashboard
from app.http import docs, problems, topics
from app.http import routes as api
from app.http.auth import redact_access_log
from app.http.cors import ListedOriginsCORS
from app.http.event_stream import SERVER_SEND, watch_streams
from app.http.head import as_get
from app.http.headers import with_response_headers
from app.http.routes import router
from app.http.schemas import ItemIn, ProblemDetails
from app.http.service import Service
from app.server.connections import raise_descriptor_limit
from app.server.garbage import defer_full_collections_during_storms
from app.settings import Settings
from streaming import Backend, BackendClosed, BackendUnavailable, MemoryBackend
from streaming.backends.redis import RedisBackend, connector

logger = logging.getLogger("tailcast")


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    """Build the service. Without a publish token in ``settings`` one is generated and logged."""
    settings = settings or Settings()
    token = settings.publish_token.get_secret_value() if settings.publish_token else None
    if token is None:
        token = secrets.token_urlsafe(24)
        logger.warning("No TAILCAST_PUBLISH_TOKEN set; generated publish token: %s", token)
    descriptors = raise_descriptor_limit()
    service = Service(settings, backend or make_backend(settings), token)
    _log_limits(service, *descriptors)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with service.backend, anyio.create_task_group() as tasks:
            tasks.start_soon(service.fanout.run)
            tasks.start_soon(service.stream_starts.run)
            tasks.start_soon(
                defer_full_collections_during_storms,
                service.stream_starts,
                lambda: service.backend.replica.broadcast.end,  # items applied so far
            )
            tasks.start_soon(watch_streams, service)
            tasks.start_soon(_end_streams_on_server_exit, service)
            try:
                yield
            finally:
                service.begin_shutdown()
                tasks.cancel_scope.cancel()

    app = _Tailcast(
        title="Tailcast",
        version=__version__,
        description="Replay-then-live Server-Sent Events over a TTL cache.",
        lifespan=lifespan,
        # /docs is app/http/docs.py, from the app's own copy of Swagger UI; FastAPI's pages
        # would load it (and ReDoc) from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.tailcast = service
    app.include_router(router)
    app.include_router(topics.router)
    app.include_router(dashboard.router)
    app.include_router(docs.router)
    problems.install(app)
    app.add_exception_handler(BackendUnavailable, _backend_unavailable)
    app.add_exception_handler(BackendClosed, _backend_closed)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)
    app.add_exception_handler(Exception, _internal_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _allow_cross_origin(app, settings)
    redact_access_log()
    return app


class _Tailcast(FastAPI):
    """The app, with a fast path for the two hot routes.

    Publishing and streaming are what Tailcast does at volume. Their handlers read the
    request themselves, so the fast path is routing only: it calls the same handler
    directly, past FastAPI's routing, dependency and middleware layers (about half of a
    publish's cost, and a third of an idle stream's memory), and errors go to the same
    exception handlers. The FastAPI routes stay: they document the API and serve it when
    middleware (CORS) is installed.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = as_get(scope)
            server_send = send
            send = with_response_headers(scope, send)
            handler = _FAST_ROUTES.get((scope["method"], scope["path"]))
            if handler is not None and not self.user_middleware and not scope.get("root_path"):
                scope["app"] = self
                # Only the response outlives the handler (an open stream keeps nothing else).
                response = await self._respond(handler, Request(scope, receive))
                await response(scope, receive, send)
                return
            # Past middleware, responses find the server's own send here (`server_send`).
            scope[SERVER_SEND] = server_send
        await super().__call__(scope, receive, send)

    async def _respond(self, handler: _Handler, request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return await self._handle(request, exc)

    async def _handle(self, request: Request, exc: Exception) -> Response:
        for cls in type(exc).__mro__:
            if cls in self.exception_handlers:
                response = self.exception_handlers[cls](request, exc)
                return await response if inspect.isawaitable(response) else response
        raise exc  # not reached: there is a handler for Exception


_Handler = Callable[[Request], Awaitable[Response]]
_FAST_ROUTES: dict[tuple[str, str], _Handler] = {
    ("POST", "/items"): api.publish,
    ("GET", "/stream"): api.stream,
}


def _allow_cross_origin(app: FastAPI, settings: Settings) -> None:
    """CORS for the configured origins, and only then: the middleware costs every request."""
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            ListedOriginsCORS,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["Retry-After", "WWW-Authenticate"],
        )


def make_backend(settings: Settings) -> Backend:
    """The backend ``settings.backend`` names."""
    if settings.backend == "memory":
        return MemoryBackend(settings.log_config())
    return RedisBackend(
        connector(settings.backend),
        settings.log_config(),
        prefix=settings.redis_prefix,
        max_len=settings.redis_max_len,
        wait_replicas=settings.wait_replicas(),
    )


def _log_limits(service: Service, before: int, after: int) -> None:
    limits = service.limits
    raised = f" (raised from {before})" if after != before else ""
    logger.info(
        "descriptor limit %d%s: at most %d connections, %d of them streams; requests must "
        "arrive within %g s",
        after,
        raised,
        limits.max_connections,
        limits.max_streams,
        limits.request_timeout,
    )
    for warning in limits.warnings():
        logger.warning("%s", warning)


async def _end_streams_on_server_exit(service: Service) -> None:
    """End every stream once uvicorn begins to exit, also when it runs without `Server`.

    Under `tailcast serve` `Server.shutdown` does this at once; plain uvicorn (and its
    ``--workers`` processes) only flips the exit flag sse-starlette hooks into it.
    """
    while not AppStatus.should_exit:  # noqa: ASYNC110 - a flag set by a signal handler
        await anyio.sleep(0.5)
    service.begin_shutdown()


async def _backend_unavailable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendUnavailable)
    retry = max(1, round(exc.retry_after))
    return problems.problem_response(
        503, f"{exc} Nothing was stored; retry later.", headers={"Retry-After": str(retry)}
    )


async def _backend_closed(_request: Request, _exc: Exception) -> Response:
    return problems.problem_response(
        503, "The service is shutting down; nothing was stored.", headers={"Retry-After": "1"}
    )


async def _client_disconnected(request: Request, _exc: Exception) -> Response:
    # The client left before its body ended: common, its own doing, and no one is there to
    # read an answer. Nothing was stored.
    logger.debug("Client disconnected before the end of %s %s", request.method, request.url.path)
    return problems.problem_response(400, "The request ended before its body did.")


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problems.problem_response(500, "An internal error occurred; it has been logged.")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request model it cannot see (bodies are parsed by hand)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        for model in (ItemIn, ProblemDetails):
            components.setdefault("schemas", {})[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        for name in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(name, None)
        components["securitySchemes"] = {
            "publishToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The publish token.",
            },
            "jwt": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An HS256 JWT granting topics (only when jwt_secret is set).",
            },
        }
        for operations in schema["paths"].values():
            for operation in operations.values():
                # FastAPI documents its own 422 for parameters; bad parameters are 400 here.
                if operation["responses"].get("422", {}).get("description") == "Validation Error":
                    del operation["responses"]["422"]
        app.openapi_schema = schema
    return app.openapi_schema
