"""`create_app(settings)`: the jobrag HTTP API. Routes call the same code as the CLI (RetrieverFactory.build, the
constrained search, ChatEngine); the edge (API key, body size, CORS, request ids, errors) is set up here once."""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_app.errors import JobragError
from rag_app.records import Answer
from rag_app.retrievers import VERSION_KEY
from rag_app.server import openai_compat
from rag_app.server.common import begin, error_json, event_stream, final_answer, request_id_of, runtime_of, sse, with_notice
from rag_app.server.runtime import NotReady, QueueFull, Runtime
from rag_app.server.schemas import (
    AskRequest,
    CollectionInfo,
    ErrorResponse,
    SearchRequest,
    SearchResponse,
    check_limits,
    public_answer,
    public_source,
)

if TYPE_CHECKING:
    from rag_app.chat import ChatEvent
    from rag_app.settings import ServerSettings, Settings

logger = logging.getLogger(__name__)
OPEN_PATHS = ("/healthz", "/readyz")  # answer without the API key (load balancers, orchestrators)
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (401, 413, 422, 429, 503)}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


SETTINGS_ENV = "JOBRAG_SERVE_SETTINGS"  # `jobrag serve --workers N`: the parent's effective settings, as JSON, for each worker


def app_from_env() -> FastAPI:
    """The app of one `jobrag serve --workers N` worker process (a uvicorn factory): the settings the parent resolved."""
    import json
    import os

    from rag_app.settings import Settings

    return create_app(Settings(**json.loads(os.environ[SETTINGS_ENV])))


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The API over components built once, in the background, when the app starts (`/readyz` turns 200 when done)."""
    runtime = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=runtime.load, name="jobrag-load", daemon=True).start()
        yield

    app = FastAPI(title="jobrag", summary="Search and cited answers over job listings.", version="1", lifespan=lifespan,
                  description="Listing text in every response is inert (no links, images, HTML). Errors are "
                              '`{"error": {"message", "type", "field", "request_id"}}`.')
    app.state.runtime = runtime
    _errors(app, settings.server)
    app.add_middleware(Edge, limits=settings.server)
    if settings.server.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.server.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"], expose_headers=["X-Request-ID", "Retry-After"])
    _routes(app)
    app.include_router(openai_compat.router)
    return app


def _routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"], summary="The process is up.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="The models are loaded (503 until then).", responses={503: {"model": ErrorResponse}})
    def readyz(request: Request) -> dict[str, Any]:
        runtime = runtime_of(request)
        runtime.require_ready()
        s = runtime.settings
        return {"ready": True, "embedder": s.embedding.model, "retriever": s.retrieval.mode, "llm": s.llm.mode if runtime.llm else "none",
                "store": s.store.mode, "generation": {"admitted": runtime.gate.admitted, "capacity": runtime.gate.capacity}}

    @app.get("/v1/collections", tags=["search"], summary="Ingested collections: embedder, fingerprint, size.", responses=ERRORS)
    def collections(request: Request) -> list[CollectionInfo]:
        factory = runtime_of(request).require_ready()
        try:
            default = factory.collection().name
        except JobragError:  # nothing ingested for embedding.model yet
            default = None
        return [CollectionInfo(name=c.name, model=str(c.metadata.get("model", "?")), fingerprint=str(c.metadata.get("fingerprint")),
                               chunks=c.count, created_at=c.metadata.get("created_at"), version=c.metadata.get(VERSION_KEY),
                               default=c.name == default) for c in factory.store.collections()]

    @app.post("/v1/search", tags=["search"], summary="Ranked listings for a query, with what was understood from it.", responses=ERRORS)
    async def search(body: SearchRequest, request: Request) -> SearchResponse:
        runtime = runtime_of(request)
        check_limits(body, runtime.settings.server, "query", body.query)
        return await runtime.retrieval(_search, runtime, body)

    @app.post("/v1/ask", tags=["answers"], summary="A cited answer (or, with stream=true, server-sent events).", responses=ERRORS)
    async def ask(body: AskRequest, request: Request) -> Answer:
        runtime = runtime_of(request)
        check_limits(body, runtime.settings.server, "question", body.question, len(body.history))
        events, first, ticket = await begin(runtime, body, body.question, body.history)
        if body.stream:
            return event_stream(first, events, lambda e: _render(e, runtime), request_id_of(request), ticket)  # type: ignore[return-value]
        return public_answer(with_notice(await final_answer(events, ticket), runtime))


def _search(runtime: Runtime, body: SearchRequest) -> SearchResponse:
    from rag_app.chat import to_sources

    started = time.perf_counter()
    runtime.check_spec(body.retriever)
    retriever = runtime.require_ready().build(body.retriever, body.filters, body.k, understand=True)
    apply = runtime.settings.retrieval.understand if body.understand is None else body.understand
    found = retriever.search(body.query, ignore=body.ignore, apply=apply)
    every = found.understanding.constraints
    return SearchResponse(query=body.query, retriever=body.retriever or runtime.settings.retrieval.mode,
                          sources=[public_source(s) for s in to_sources(found)], understood=every,
                          ignored=sorted({c.key for c in every} & set(body.ignore)), constraints_applied=found.applied,
                          constraints_met=found.met, timings={"search_ms": 1000 * (time.perf_counter() - started)})


def _render(event: ChatEvent, runtime: Runtime) -> str:
    if event.kind == "sources":
        return sse("sources", [public_source(s).model_dump(mode="json") for s in event.data])
    if event.kind == "token":
        return sse("token", {"text": event.data})
    return sse("answer", public_answer(with_notice(event.data, runtime)).model_dump(mode="json"))


# -- the edge -------------------------------------------------------------------------------------------------------
class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes (server.max_body_bytes)")


class Edge:
    """Pure ASGI middleware: a request id on every response, the API key, and the body size limit."""

    def __init__(self, app: Any, limits: ServerSettings) -> None:
        self.app, self.limits = app, limits
        self.key = limits.api_key.get_secret_value().encode() if limits.api_key else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        if self.key is not None and scope["path"] not in OPEN_PATHS and not self._authorized(headers):
            reply = error_json(401, "missing or wrong API key: send Authorization: Bearer <server.api_key>", "unauthorized", rid,
                               headers={"WWW-Authenticate": "Bearer"})
            return await reply(scope, receive, send_with_id)
        limit = self.limits.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return await error_json(413, BodyTooLarge(limit).detail, "too_large", rid)(scope, receive, send_with_id)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # a chunked body without Content-Length
                raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send_with_id)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.key or b"")


def _errors(app: FastAPI, limits: ServerSettings) -> None:
    retry = {"Retry-After": str(limits.retry_after_s)}

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": "body" if e.get("type") == "json_invalid" else ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                     "message": e["msg"]} for e in exc.errors()]
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        return error_json(422, f"{first['field']}: {first['message']}", "invalid_request", request_id_of(request), first["field"],
                          problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return error_json(exc.status_code, str(exc.detail), kind, request_id_of(request), headers=getattr(exc, "headers", None))

    @app.exception_handler(QueueFull)
    async def on_full(request: Request, exc: QueueFull) -> JSONResponse:
        return error_json(429, str(exc), "queue_full", request_id_of(request), headers=retry)

    @app.exception_handler(NotReady)
    async def on_not_ready(request: Request, exc: NotReady) -> JSONResponse:
        return error_json(503, str(exc), "not_ready", request_id_of(request), headers=retry)

    @app.exception_handler(JobragError)
    async def on_jobrag(request: Request, exc: JobragError) -> JSONResponse:  # e.g. no collection yet, Chroma unreachable
        return error_json(503, str(exc), "unavailable", request_id_of(request), headers=retry)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id_of(request)
        logger.error("request %s failed", rid, exc_info=exc)
        # answered outside the middleware (Starlette's ServerErrorMiddleware), so the request id header is set here
        return error_json(500, f"internal error (request {rid}): the server log has the details", "server_error", rid,
                          headers={"X-Request-ID": rid})
