"""What every page of the Streamlit UI shares: the sidebar `Choice`, components built once per settings, safe rendering.

Heavy components (embedders, Chroma client, retrievers, the LLM) are built through `st.cache_resource`, keyed by the
settings that shape them, so a rerun (every click) reuses them and two sessions share one model. Listing text is
employer-written and untrusted: it is shown with `st.text` (never parsed) or escaped before any markdown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from rag_app.filters import LEVELS as LEVEL_WORDS
from rag_app.filters import ListingFilters
from rag_app.settings import Settings, load_settings

if TYPE_CHECKING:
    from rag_app.chat import ChatEngine
    from rag_app.records import Answer, SourceListing
    from rag_app.retrievers import RetrieverFactory

RETRIEVER_KINDS = ("dense", "bm25", "hybrid")
LLM_MODES = ("local", "openai", "none")
WORKPLACES = ("Remote", "Hybrid", "On-site")
LEVELS = tuple(dict.fromkeys(LEVEL_WORDS.values()))
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+!|<>~$:])")


@dataclass(frozen=True)
class Model:
    """An ingested collection as the sidebar lists it."""

    ref: str  # what embedding.model must say to load it
    label: str
    collection: str
    chunks: int


@dataclass(frozen=True)
class Choice:
    """The sidebar's state: which collection, retriever, filters and LLM every page uses."""

    settings: Settings
    models: tuple[Model, ...]
    model: Model | None
    kind: str = "dense"
    top_k: int = 5
    filters: ListingFilters = field(default_factory=ListingFilters)

    def spec(self, kind: str | None = None, model: Model | None = None) -> str:
        chosen = model or self.model
        return f"{kind or self.kind}:{chosen.ref}" if chosen else (kind or self.kind)


def escape_md(text: str) -> str:
    """Untrusted text made inert for markdown: links, images, HTML and emphasis show literally."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


# -- components, built once per settings -------------------------------------------------------------------------
def _key(settings: Settings, *sections: str) -> str:
    return settings.model_dump_json(include={"home", *sections})


@st.cache_resource(show_spinner=False)
def _factory(key: str, _settings: Settings) -> RetrieverFactory:
    from rag_app.retrievers import RetrieverFactory

    return RetrieverFactory.from_settings(_settings)


def factory(settings: Settings) -> RetrieverFactory:
    return _factory(_key(settings, "store", "embedding", "ingest", "retrieval"), settings)


@st.cache_resource(show_spinner=False, max_entries=32)
def _retriever(key: str, spec: str, filters_json: str, top_k: int, _factory: RetrieverFactory) -> Any:
    return _factory.build(spec, ListingFilters.model_validate_json(filters_json), top_k)


@st.cache_resource(show_spinner="Starting the language model…")
def _llm(key: str, _settings: Settings) -> tuple[Any, str | None]:
    from rag_app.llms import start_llm

    return start_llm(_settings.llm, _settings.dir("cache"))


def chat_engine(choice: Choice, spec: str | None = None) -> ChatEngine:
    """A ChatEngine over cached components (the engine itself is a cheap wrapper, made per question)."""
    from rag_app.chat import ChatEngine

    settings, spec = choice.settings, spec or choice.spec()
    fac = factory(settings)
    retriever = _retriever(_key(settings, "store", "embedding", "ingest", "retrieval"), spec, choice.filters.model_dump_json(),
                           choice.top_k, fac)
    llm, _ = _llm(_key(settings, "llm"), settings)
    return ChatEngine(retriever, llm, settings.llm, retriever_label=spec)


def llm_notice(settings: Settings) -> str | None:
    return _llm(_key(settings, "llm"), settings)[1]


def models(settings: Settings) -> tuple[Model, ...]:
    """Every ingested collection, newest first, labelled by model name (fine-tuned dirs by their name) and fingerprint."""
    out = []
    for info in factory(settings).store.collections():
        meta = info.metadata
        ref = str(meta.get("model_ref") or meta.get("model", "?"))
        out.append(Model(ref=ref, label=f"{meta.get('model', ref)} · {meta.get('fingerprint', '?')} · {info.count} chunks", collection=info.name,
                         chunks=info.count))
    return tuple(out)


# -- the sidebar -------------------------------------------------------------------------------------------------
def sidebar() -> Choice:
    """Render the sidebar and return the user's choice (also kept in session state for the pages)."""
    settings = load_settings()
    found = models(settings)
    with st.sidebar:
        st.header("jobrag")
        model = None
        if found:
            labels = [m.label for m in found]
            wanted = settings.embedding.model
            wanted = str(Path(wanted).resolve()) if Path(wanted).is_dir() else wanted  # as collections record it (model_ref)
            default = next((i for i, m in enumerate(found) if m.ref == wanted), 0)
            picked = st.selectbox("Embedder / collection", labels, index=default, key="model")
            model = found[labels.index(picked)]
        else:
            st.warning("No collection yet: run `jobrag ingest --source sample` (or your own file) first.")
        kind = st.radio("Retriever", RETRIEVER_KINDS, index=RETRIEVER_KINDS.index(settings.retrieval.mode), horizontal=True, key="kind")
        top_k = st.slider("Listings (top-k)", 1, 20, min(settings.retrieval.top_k, 20), key="top_k")
        with st.expander("Filters"):
            location = st.text_input("Location contains", key="f_location")
            workplace = st.multiselect("Workplace", WORKPLACES, key="f_workplace")
            employment = st.selectbox("Employment", ["any", "Full-time", "Part-time", "Contract", "Temporary", "Internship"], key="f_employment")
            min_pay = st.number_input("Minimum yearly pay", min_value=0, step=5000, key="f_min_pay")
            currency = st.text_input("Pay currency", value="USD", key="f_currency")
            level = st.selectbox("Seniority", ["any", *LEVELS], key="f_level")
        llm_mode = st.radio("LLM", LLM_MODES, index=LLM_MODES.index(settings.llm.mode), horizontal=True, key="llm_mode")
        llm_model = st.text_input("LLM model (openai mode)", value=settings.llm.model, key="llm_model", disabled=llm_mode != "openai")
    filters = ListingFilters(location=location or None, workplace=workplace, employment=None if employment == "any" else employment,
                             min_pay=float(min_pay) or None, currency=currency or "USD", level=None if level == "any" else level)
    llm = {"mode": llm_mode, **({"model": llm_model} if llm_mode == "openai" and llm_model else {})}
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update=llm)})
    choice = Choice(settings=settings, models=found, model=model, kind=kind, top_k=top_k, filters=filters)
    st.session_state["choice"] = choice
    return choice


def current_choice() -> Choice:
    choice = st.session_state.get("choice")
    if choice is None:  # a page run on its own (tests): render the sidebar here
        choice = sidebar()
    return choice


# -- rendering ---------------------------------------------------------------------------------------------------
def show_sources(sources: list[SourceListing], cited: list[str], key: str) -> None:
    """Each listing expandable: facts, the matching chunk and the retriever score, all as plain text."""
    for s in sources:
        mark = " · cited" if s.id in cited else ""
        with st.expander(f"{s.rank}. [{escape_md(s.id)}] {escape_md(s.title)}{mark}", expanded=False):
            facts = {"company": s.company, "location": s.location, "pay": s.salary, "work type": s.work_type,
                     "score": f"{s.score:.4f}", "id": s.id}
            st.text("\n".join(f"{k}: {v}" for k, v in facts.items() if v))
            st.caption("matching passage")
            st.text(s.chunk)


def show_answer(answer: Answer, key: str, streamed: bool = False) -> None:
    if not streamed:
        st.markdown(escape_md(answer.text).replace("\n", "  \n"))
    if answer.notice:
        st.warning(answer.notice, icon="⚠️")
    t = answer.timings
    figures = [f"retrieve {t['retrieve_ms']:.0f} ms" if "retrieve_ms" in t else "",
               f"first token {t['first_token_ms']:.0f} ms" if "first_token_ms" in t else "",
               f"answer {t['generate_ms'] / 1000:.1f} s, {t.get('tokens_per_s', 0):.1f} tok/s" if "generate_ms" in t else "",
               f"via {answer.retriever} · {answer.llm}"]
    st.caption(" · ".join(f for f in figures if f))
    show_sources(answer.sources, answer.cited_ids, key)


def stream_markdown(engine: ChatEngine, question: str, history: list[Answer]) -> tuple[Answer, bool]:
    """Stream escaped tokens into the page; return the final Answer and whether any token was streamed."""
    holder: dict[str, Any] = {}

    def tokens():
        for event in engine.stream(question, history):
            if event.kind == "token" and event.data:
                holder["streamed"] = True
                yield escape_md(event.data).replace("\n", "  \n")
            elif event.kind == "answer":
                holder["answer"] = event.data

    st.write_stream(tokens())
    return holder["answer"], bool(holder.get("streamed"))


def overlap_note(left: list[str], right: list[str]) -> str:
    shared = set(left) & set(right)
    same_top = bool(left and right and left[0] == right[0])
    return (f"{len(shared)} of {max(len(left), len(right))} listings appear in both lists "
            f"(Jaccard {len(shared) / max(len(set(left) | set(right)), 1):.2f}); top-1 {'agrees' if same_top else 'differs'}.")


def report_dirs(settings: Settings) -> list[Path]:
    """Compare runs under <home>/reports (any depth), newest first."""
    root = settings.dir("reports")
    found = [p.parent for p in root.rglob("summary.json")] if root.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def load_summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text(encoding="utf-8"))
