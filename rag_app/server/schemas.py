"""The API's bodies. Responses reuse rag_app.records (`Answer`, `SourceListing`, `Constraint`), made public-safe first:
listing text is inert (rag_app.safe_text) and listing metadata is cut to the documented facts.

Structure (types, required fields, unknown keys) is checked by pydantic; the limits that come from the settings
(`server.max_query_chars`, `server.max_k`, `server.max_history`) by `check_limits`, which fails the same way: 422
naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from rag_app.filters import ListingFilters
from rag_app.records import Answer, Constraint, SourceListing
from rag_app.safe_text import inert
from rag_app.settings import ServerSettings

ConstraintKey = Constraint.model_fields["key"].annotation  # the understood constraints' keys, written once in records
PUBLIC_FACTS = ("title", "company", "location", "salary", "work_type", "experience_level", "skills", "workplace", "employment", "level",
                "pay_min", "pay_max", "pay_mid", "currency")
MAX_FILTER_CHARS = 200


class Filters(ListingFilters):
    """Listing filters (`rag_app.filters.ListingFilters`); an unknown key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class RetrievalOptions(BaseModel):
    """How to search: the same knobs as the CLI's `--retriever`, `--filter`, `--top-k`, `--understand`, `--ignore`."""

    model_config = ConfigDict(extra="forbid")

    retriever: str | None = Field(None, description="dense[:MODEL] | bm25[:MODEL] | hybrid[:MODEL] (default retrieval.mode); MODEL must be "
                                                    "the embedder of a served collection (GET /v1/collections).")
    filters: Filters | None = Field(None, description="Listing filters; default retrieval.filters.")
    k: int | None = Field(None, ge=1, description="Listings to return (default retrieval.top_k; at most server.max_k).")
    understand: bool | None = Field(None, description="Apply the constraints understood from the question as filters (default "
                                                      "retrieval.understand); they are reported either way.")
    ignore: list[ConstraintKey] = Field(default_factory=list, description="Understood constraints to drop, by key.")  # type: ignore[valid-type]


class SearchRequest(RetrievalOptions):
    query: str = Field(min_length=1, description="What the job seeker typed (at most server.max_query_chars).")


class AskRequest(RetrievalOptions):
    question: str = Field(min_length=1, description="The question (at most server.max_query_chars).")
    history: list[Answer] = Field(default_factory=list, description="Earlier answers of this conversation, oldest first, as this API "
                                                                    "returned them (follow-ups like 'which of those are remote?').")
    stream: bool = Field(False, description="Stream server-sent events: `sources`, then `token` pieces, then the `answer`.")


class SearchResponse(BaseModel):
    query: str
    retriever: str
    sources: list[SourceListing] = Field(description="Ranked listings: score, the matching passage, and the understood constraints each misses.")
    understood: list[Constraint] = Field(description="Constraints understood from the query.")
    ignored: list[str] = Field(default_factory=list, description="Keys of understood constraints that were dropped.")
    constraints_applied: bool = False
    constraints_met: int = 0
    timings: dict[str, float] = Field(default_factory=dict)


class CollectionInfo(BaseModel):
    name: str
    model: str
    fingerprint: str
    chunks: int
    created_at: str | None = None
    version: str | None = Field(None, description="Content version the last ingest recorded (BM25 copies rebuild when it changes).")
    default: bool = Field(False, description="The collection of embedding.model (used when a retriever names no model).")


class ErrorBody(BaseModel):
    message: str
    type: str
    field: str | None = None
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def public_source(source: SourceListing) -> SourceListing:
    """A listing as the API shows it: inert text, metadata cut to the documented facts (no links, no internals)."""
    meta = {k: inert(v) if isinstance(v, str) else v for k, v in source.metadata.items() if k in PUBLIC_FACTS}
    text = {f: inert(v) for f in ("title", "company", "location", "salary", "work_type", "chunk") if isinstance(v := getattr(source, f), str)}
    return source.model_copy(update={**text, "metadata": meta})


def public_answer(answer: Answer) -> Answer:
    return answer.model_copy(update={"sources": [public_source(s) for s in answer.sources]})


def invalid(field: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 naming `field`, shaped like pydantic's own validation errors."""
    return RequestValidationError([{"loc": ("body", *field), "msg": message, "type": "value_error"}])


def check_limits(body: RetrievalOptions, limits: ServerSettings, text_field: str, text: str, history: int = 0,
                 history_field: str = "history", prefix: tuple[str, ...] = ()) -> None:
    """The settings' limits; the first one exceeded raises a 422 naming its field (`prefix`: where `body` sits in the request)."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    if len(text) > limits.max_query_chars:
        problems.append(((text_field,), f"at most {limits.max_query_chars} characters (server.max_query_chars), got {len(text)}"))
    if body.k is not None and body.k > limits.max_k:
        problems.append(((*prefix, "k"), f"at most {limits.max_k} (server.max_k), got {body.k}"))
    if history > limits.max_history:
        problems.append(((history_field,), f"at most {limits.max_history} earlier turns (server.max_history), got {history}"))
    for key, value in (body.filters.model_dump() if body.filters else {}).items():
        if isinstance(value, str) and len(value) > MAX_FILTER_CHARS:
            problems.append(((*prefix, "filters", key), f"at most {MAX_FILTER_CHARS} characters, got {len(value)}"))
    if body.retriever is not None and len(body.retriever) > 500:
        problems.append(((*prefix, "retriever"), "at most 500 characters"))
    if problems:
        raise invalid(*problems[0])

