"""`POST /v1/chat/completions` and `GET /v1/models`, OpenAI-compatible so existing clients work unchanged.

The last user message is the question; earlier user/assistant turns are the history (the listings an assistant turn
cited, `[id]`, are read back from the collection, so follow-ups like "which of those are remote?" work statelessly).
Listings, citations and the understood constraints ride in an extension field, `jobrag`, on the response (and on the
last chunk when streaming). Retrieval options go in the request's own `jobrag` field (`extra_body` in the OpenAI
client). Sampling knobs (temperature, max_tokens, ...) are accepted and ignored: the settings decide.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from rag_app.server.common import begin, event_stream, final_answer, request_id_of, runtime_of, sse, with_notice
from rag_app.server.runtime import history_turn
from rag_app.server.schemas import ErrorResponse, RetrievalOptions, check_limits, invalid, public_answer

if TYPE_CHECKING:
    from rag_app.chat import ChatEvent
    from rag_app.records import Answer

router = APIRouter(tags=["openai"])
MODEL = "jobrag"
_CITED = re.compile(r"\[([\w.:#/-]+(?:,\s*[\w.:#/-]+)*)\]")


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(MODEL, description="Echoed back; the settings choose the embedder and the LLM.")
    messages: list[Message] = Field(min_length=1, description="The last one is the user's question; earlier turns are the history.")
    stream: bool = False
    jobrag: RetrievalOptions = Field(default_factory=RetrievalOptions, description="Extension: retriever, filters, k, understand, ignore.")


@router.get("/v1/models", summary="The one model this API serves.")
def models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "jobrag"}]}


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat; listings in the `jobrag` extension field.",
             responses={code: {"model": ErrorResponse} for code in (401, 413, 422, 429, 503)})
async def chat_completions(body: ChatCompletionRequest, request: Request) -> dict[str, Any]:
    runtime = runtime_of(request)
    question, turns = _split(body.messages)
    check_limits(body.jobrag, runtime.settings.server, "messages", question, len(turns), history_field="messages", prefix=("jobrag",))
    history = await run_in_threadpool(lambda: [history_turn(q, a, runtime.sources_of(_cited(a), body.jobrag.retriever)) for q, a in turns])
    events, first, ticket = await begin(runtime, body.jobrag, question, history, ("jobrag",))
    rid, created = request_id_of(request), int(time.time())
    head = {"id": f"chatcmpl-{rid}", "created": created, "model": body.model}
    if body.stream:
        def render(event: ChatEvent) -> str | None:
            chunk = {**head, "object": "chat.completion.chunk"}
            if event.kind == "sources":
                return sse(None, {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
            if event.kind == "token":
                return sse(None, {**chunk, "choices": [{"index": 0, "delta": {"content": event.data}, "finish_reason": None}]})
            answer = with_notice(event.data, runtime)
            return sse(None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "jobrag": extension(answer)})

        return event_stream(first, events, render, rid, ticket, error_event=None, done="data: [DONE]\n\n")  # type: ignore[return-value]
    answer = with_notice(await final_answer(events, ticket), runtime)
    tokens = int(answer.timings.get("tokens", 0))
    return {**head, "object": "chat.completion", "jobrag": extension(answer),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}}


def extension(answer: Answer) -> dict[str, Any]:
    """The listings behind an answer, for clients that show them: sources, cited ids, understood constraints, notice."""
    public = public_answer(answer).model_dump(mode="json")
    return {"sources": public["sources"], "cited_ids": public["cited_ids"], "understood": public["understood_filters"],
            "ignored": public["ignored_filters"], "constraints_applied": public["constraints_applied"],
            "constraints_met": public["constraints_met"], "notice": public["notice"], "query": public["query"],
            "retriever": public["retriever"], "llm": public["llm"], "timings": public["timings"]}


def _split(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """(the question, earlier (user, assistant) turns); system and tool messages are not part of the history."""
    talk = [m for m in messages if m.role in ("user", "assistant")]
    if not talk or talk[-1].role != "user" or not talk[-1].text().strip():
        raise invalid(("messages",), "the last user/assistant message must be the user's question (non-empty)")
    turns, pending = [], None
    for message in talk[:-1]:
        if message.role == "user":
            pending = message.text()
        elif pending is not None:
            turns.append((pending, message.text()))
            pending = None
    return talk[-1].text().strip(), turns


def _cited(text: str) -> list[str]:
    return list(dict.fromkeys(i.strip() for m in _CITED.finditer(text) for i in m.group(1).split(",")))
