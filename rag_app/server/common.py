"""Pieces every route uses: the process's runtime, the request id, JSON errors, and server-sent event streams."""

from __future__ import annotations

import itertools
import json
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from rag_app.errors import JobragError

if TYPE_CHECKING:
    from rag_app.chat import ChatEvent
    from rag_app.records import Answer
    from rag_app.server.runtime import Runtime, Ticket
    from rag_app.server.schemas import RetrievalOptions

logger = logging.getLogger(__name__)


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


def error_json(status: int, message: str, kind: str, request_id: str, field: str | None = None, headers: dict[str, str] | None = None,
               **extra: Any) -> JSONResponse:
    """The one error shape (OpenAI's, so its clients read it): {"error": {"message", "type", "field", "request_id"}}."""
    body = {"message": message, "type": kind, "field": field, "request_id": request_id}
    return JSONResponse({"error": body, **extra}, status_code=status, headers=headers)


async def begin(runtime: Runtime, options: RetrievalOptions, question: str, history: Sequence[Answer], where: tuple[str, ...] = ()
                ) -> tuple[Iterator[ChatEvent], ChatEvent, Ticket | None]:
    """Admit the request to the generation gate when a model writes (refused at once when full), then retrieve, bounded
    like every search: the engine's events, the first one (the sources), and the gate's ticket."""
    ticket = runtime.gate.admit() if runtime.writes else None
    try:
        events, first = await runtime.retrieval(runtime.start, options, question, history, where)
    except BaseException:
        if ticket is not None:
            ticket.release()
        raise
    return events, first, ticket


async def final_answer(events: Iterator[ChatEvent], ticket: Ticket | None) -> Answer:
    """Run the engine to its `Answer` off the event loop, giving the gate's place back however it ends."""
    try:
        return await run_in_threadpool(lambda: list(events)[-1].data)
    finally:
        if ticket is not None:
            ticket.release()


def with_notice(answer: Answer, runtime: Runtime) -> Answer:
    if runtime.llm_notice:
        answer.notice = f"{runtime.llm_notice} {answer.notice or ''}".strip()
    return answer


def sse(event: str | None, data: Any) -> str:
    """One server-sent event; the data is compact JSON (one line)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


def event_stream(first: ChatEvent, events: Iterator[ChatEvent], render: Callable[[ChatEvent], str | None], request_id: str,
                 ticket: Ticket | None = None, error_event: str | None = "error", done: str = "") -> StreamingResponse:
    """Stream the chat engine's events (`first`, then the rest of `events`) as SSE. A failure mid-stream ends it with an
    error event (no trace); the engine is closed and the gate's ticket released however the stream ends, the client
    hanging up included."""

    def body() -> Iterator[str]:
        try:
            for event in itertools.chain([first], events):
                if (line := render(event)) is not None:
                    yield line
            if done:
                yield done
        except Exception as exc:  # noqa: BLE001 - the client gets one line, the log the trace
            logger.exception("request %s: stream failed", request_id)
            message = str(exc) if isinstance(exc, JobragError) else "internal error: the server log has the details"
            yield sse(error_event, {"error": {"message": message, "type": "server_error", "request_id": request_id}})
        finally:
            events.close()
            if ticket is not None:
                ticket.release()

    stream = body()
    if ticket is not None:
        weakref.finalize(stream, ticket.release)  # a stream dropped before it started still gives its place back
    return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
