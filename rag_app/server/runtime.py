"""What one `jobrag serve` process holds: components built once and shared by every request, and the generation gate.

The embedder, the retriever indexes (through `RetrieverFactory`, which is thread-safe and reloads a BM25 copy when an
ingest on any machine records a new version) and the LLM are built once, in the background at startup (`/readyz`
says when). A request builds its own cheap `ChatEngine` over them; nothing per request is kept here.

Only generation is bounded: `server.llm_concurrency` answers are written at once and `server.llm_queue` more may wait;
one more is refused at once (`QueueFull`, 429 with Retry-After). Retrieval never waits for the gate.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from rag_app.errors import ConfigError, JobragError
from rag_app.records import LISTING_ID, Answer
from rag_app.retrievers import parse_spec

if TYPE_CHECKING:
    from rag_app.chat import ChatEngine, ChatEvent
    from rag_app.retrievers import RetrieverFactory
    from rag_app.server.schemas import RetrievalOptions
    from rag_app.settings import Settings

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """Every generation slot is busy and the queue is full: the caller should retry later."""


class NotReady(Exception):
    """The components are still loading (or failed to load)."""


class GenerationGate:
    """A bounded queue in front of the LLM: `admit()` a request (or refuse it at once), then hold `running()` per stream."""

    def __init__(self, concurrency: int, queue: int, wait_s: float) -> None:
        self.concurrency, self.capacity, self.wait_s = concurrency, concurrency + queue, wait_s
        self._slots = threading.Semaphore(concurrency)  # released from whichever thread ends the stream
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        return self._admitted

    def admit(self) -> Ticket:
        with self._lock:
            if self._admitted >= self.capacity:
                raise QueueFull(f"{self.concurrency} answers are being written and {self.capacity - self.concurrency} are waiting "
                                "(server.llm_concurrency, server.llm_queue): retry later")
            self._admitted += 1
        return Ticket(self)

    def _leave(self) -> None:
        with self._lock:
            self._admitted -= 1

    @contextmanager
    def running(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.wait_s):
            raise TimeoutError(f"no generation slot within {self.wait_s:g}s (server.llm_queue_timeout_s)")
        try:
            yield
        finally:
            self._slots.release()


class Ticket:
    """One admitted request's place in the gate; `release()` is idempotent (the stream's end and its finaliser both call it)."""

    def __init__(self, gate: GenerationGate) -> None:
        self._gate, self._held, self._lock = gate, True, threading.Lock()

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._gate._leave()


class GatedLLM:
    """The shared LLM behind the gate: a stream holds a generation slot from its first token until it ends or is closed."""

    def __init__(self, llm: Any, gate: GenerationGate) -> None:
        self._llm, self._gate = llm, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def stream_chat(self, messages: Sequence[Any], **kwargs: Any) -> Iterator[Any]:
        with self._gate.running():
            yield from self._llm.stream_chat(messages, **kwargs)


class Runtime:
    """The process's shared components; `load()` runs once in the background at startup."""

    def __init__(self, settings: Settings, factory: RetrieverFactory | None = None) -> None:
        s = settings.server
        self.settings, self.factory = settings, factory
        self.gate = GenerationGate(s.llm_concurrency, s.llm_queue, s.llm_queue_timeout_s)
        self.llm: Any = None
        self.llm_notice: str | None = None
        self.error: str | None = None
        self.ready = threading.Event()
        self.retrieval_slots = s.retrieval_concurrency or os.cpu_count() or 1
        self._limiter: Any = None  # anyio.CapacityLimiter, made in the event loop on first use

    def load(self) -> None:
        from rag_app.llms import start_llm
        from rag_app.retrievers import RetrieverFactory

        try:
            settings = self.settings
            if settings.server.torch_threads and settings.embedding.mode == "sentence-transformers":
                import torch

                torch.set_num_threads(settings.server.torch_threads)  # requests are the parallelism, not one query's matmuls
            self.factory = self.factory or RetrieverFactory.from_settings(settings)
            self.factory.embedder()  # the default embedder, now rather than in the first request
            self.llm, self.llm_notice = start_llm(settings.llm, settings.dir("cache"))
            try:  # warm the default retriever (indexes, question understanding) when a collection exists already
                self.factory.build(understand=True).search("registered nurse in Austin, TX paying over $30 an hour")
            except JobragError as exc:
                logger.warning("not warmed: %s (requests will say so until an ingest creates it)", exc)
            self.ready.set()
            logger.info("ready: embedder %s, llm %s", settings.embedding.model, settings.llm.mode if self.llm else "none")
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and every request, the trace goes to the log
            self.error = f"{exc.__class__.__name__}: {exc}" if not isinstance(exc, JobragError) else str(exc)
            logger.exception("loading the components failed")

    @property
    def writes(self) -> bool:
        """Whether a model writes (part of) the answers: then a request needs a place in the generation gate."""
        return self.llm is not None and self.settings.llm.writes

    async def retrieval(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` in a worker thread, at most `retrieval_slots` at once; the others wait their turn (FIFO)."""
        import anyio

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.retrieval_slots)
        return await anyio.to_thread.run_sync(partial(fn, *args), limiter=self._limiter)

    def start(self, options: RetrievalOptions, question: str, history: Sequence[Answer], where: tuple[str, ...] = ()
              ) -> tuple[Iterator[ChatEvent], ChatEvent]:
        """The request's engine and its retrieval: the event stream and its first event (the sources)."""
        events = self.engine(options, where).stream(question, history, ignore=options.ignore)
        return events, next(events)

    def require_ready(self) -> RetrieverFactory:
        if not self.ready.is_set():
            raise NotReady(f"not ready: {self.error}" if self.error else "still loading the models")
        assert self.factory is not None
        return self.factory

    def check_spec(self, spec: str | None, where: tuple[str, ...] = ()) -> None:
        """A malformed spec, or one naming a model no served collection was built with (a caller never makes the server load
        a model), is a 422 naming the `retriever` field (under `where` in the request body)."""
        from rag_app.server.schemas import invalid

        if spec is None:
            return
        try:
            _, model = parse_spec(spec)
        except ConfigError as exc:
            raise invalid((*where, "retriever"), str(exc)) from None
        if model is None or model == self.settings.embedding.model:
            return
        served = {str(c.metadata.get(k)) for c in self.require_ready().store.collections() for k in ("model_ref", "model")}
        if model not in served:
            raise invalid((*where, "retriever"), f"model {model!r} is not the embedder of a served collection; served: {', '.join(sorted(served)) or 'none'}")

    def engine(self, options: RetrievalOptions, where: tuple[str, ...] = ()) -> ChatEngine:
        from rag_app.chat import ChatEngine

        factory = self.require_ready()
        self.check_spec(options.retriever, where)
        llm = GatedLLM(self.llm, self.gate) if self.llm is not None else None
        return ChatEngine.from_factory(factory, llm, options.retriever, options.filters, options.k, understand=options.understand)

    def sources_of(self, cited: list[str], spec: str | None) -> list[Any]:
        """The listings an earlier turn cited (an OpenAI client sends back only the text), from the collection itself."""
        from llama_index.core.schema import NodeWithScore, TextNode

        from rag_app.chat import to_sources
        from rag_app.constrained import Search
        from rag_app.query import understand

        if not cited:
            return []
        collection = self.require_ready().collection(parse_spec(spec or self.settings.retrieval.mode)[1])
        got = collection.get(where={LISTING_ID: {"$in": cited}}, include=["metadatas", "documents"])
        first: dict[str, NodeWithScore] = {}
        for chunk_id, meta, doc in zip(got["ids"], got["metadatas"], got["documents"]):
            first.setdefault(str(meta[LISTING_ID]), NodeWithScore(node=TextNode(id_=chunk_id, text=doc or "", metadata=dict(meta)), score=0.0))
        hits = [first[i] for i in cited if i in first]
        return to_sources(Search(understand(""), hits, applied=False, met=len(hits)))


def history_turn(question: str, text: str, sources: list[Any]) -> Answer:
    """An earlier turn as the chat engine reads history: the question (its own retrieval query), the text, its listings."""
    return Answer(question=question, query=question, text=text, sources=sources, cited_ids=[s.id for s in sources])
