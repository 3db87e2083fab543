"""The UI's state: the sidebar's `Choice` and the components every page builds from it, once per settings.

Heavy components (embedders, Chroma client, retrievers, the LLM) are built through `st.cache_resource`, keyed by the
settings that shape them, so a rerun (every click) reuses them and two sessions share one model. A project error while
building them (no collection yet, Chroma unreachable) is shown as one line; anything else is a bug and propagates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from rag_app.errors import JobragError
from rag_app.filters import EMPLOYMENT_TYPES, WORKPLACES, ListingFilters
from rag_app.filters import LEVELS as LEVEL_WORDS
from rag_app.settings import LLM_MODES, RETRIEVER_MODES, Settings, load_settings
from rag_app.ui.render import show_error

if TYPE_CHECKING:
    from rag_app.chat import ChatEngine
    from rag_app.retrievers import RetrieverFactory

EMPLOYMENT = ("any", *EMPLOYMENT_TYPES)
LEVELS = tuple(dict.fromkeys(LEVEL_WORDS.values()))


@dataclass(frozen=True)
class CollectionChoice:
    """An ingested collection as the sidebar lists it."""

    ref: str  # what embedding.model must say to load it
    label: str
    collection: str
    chunks: int


@dataclass(frozen=True)
class Choice:
    """The sidebar's state: which collection, retriever mode, filters and LLM every page uses."""

    settings: Settings
    collections: tuple[CollectionChoice, ...]
    collection: CollectionChoice | None
    mode: str = "dense"
    top_k: int = 5
    filters: ListingFilters = field(default_factory=ListingFilters)
    store_error: str | None = None  # why no collection could be listed (e.g. the Chroma server is unreachable)

    def spec(self, mode: str | None = None, collection: CollectionChoice | None = None) -> str:
        """The retriever spec string (`mode[:model ref]`) for this choice, or for another mode/collection."""
        chosen = collection or self.collection
        return f"{mode or self.mode}:{chosen.ref}" if chosen else (mode or self.mode)


# -- the sidebar -------------------------------------------------------------------------------------------------
def sidebar() -> Choice:
    """Render the sidebar and return the user's choice (also kept in session state for the pages)."""
    settings = load_settings()
    with st.sidebar:
        st.header("jobrag")
        found, collection, store_error = _collection_picker(settings)
        mode = st.radio("Retriever", RETRIEVER_MODES, index=RETRIEVER_MODES.index(settings.retrieval.mode), horizontal=True, key="mode")
        top_k = st.slider("Listings (top-k)", 1, 20, min(settings.retrieval.top_k, 20), key="top_k")
        with st.expander("Filters"):
            filters = _filters()
        llm_mode = st.radio("LLM", LLM_MODES, index=LLM_MODES.index(settings.llm.mode), horizontal=True, key="llm_mode")
        llm_model = st.text_input("LLM model (openai mode)", value=settings.llm.model, key="llm_model", disabled=llm_mode != "openai")
    llm = {"mode": llm_mode, **({"model": llm_model} if llm_mode == "openai" and llm_model else {})}
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update=llm)})
    choice = Choice(settings=settings, collections=found, collection=collection, mode=mode, top_k=top_k, filters=filters,
                    store_error=store_error)
    st.session_state["choice"] = choice
    return choice


def current_choice() -> Choice:
    choice = st.session_state.get("choice")
    if choice is None:  # a page run on its own (tests): render the sidebar here
        choice = sidebar()
    return choice


def explain_no_collection(choice: Choice) -> None:
    """Why a page has nothing to search: the store's error, or nothing ingested yet."""
    if choice.store_error:
        show_error(choice.store_error)
    else:
        st.info("Ingest listings first, e.g. `jobrag ingest --source sample`.")


def _collection_picker(settings: Settings) -> tuple[tuple[CollectionChoice, ...], CollectionChoice | None, str | None]:
    try:
        found = collection_choices(settings)
    except JobragError as exc:  # e.g. the Chroma server is unreachable: say so, the rest of the sidebar still works
        show_error(exc)
        return (), None, str(exc)
    if not found:
        st.warning("No collection yet: run `jobrag ingest --source sample` (or your own file) first.")
        return (), None, None
    labels = [c.label for c in found]
    wanted = settings.embedding.model
    wanted = str(Path(wanted).resolve()) if Path(wanted).is_dir() else wanted  # as collections record it (model_ref)
    default = next((i for i, c in enumerate(found) if c.ref == wanted), 0)
    picked = st.selectbox("Embedder / collection", labels, index=default, key="model")
    return found, found[labels.index(picked)], None


def _filters() -> ListingFilters:
    location = st.text_input("Location contains", key="f_location")
    workplace = st.multiselect("Workplace", WORKPLACES, key="f_workplace")
    employment = st.selectbox("Employment", EMPLOYMENT, key="f_employment")
    min_pay = st.number_input("Minimum yearly pay", min_value=0, step=5000, key="f_min_pay")
    currency = st.text_input("Pay currency", value="USD", key="f_currency")
    level = st.selectbox("Seniority", ["any", *LEVELS], key="f_level")
    return ListingFilters(location=location or None, workplace=workplace, employment=None if employment == "any" else employment,
                          min_pay=float(min_pay) or None, currency=currency or "USD", level=None if level == "any" else level)


# -- components, built once per settings -------------------------------------------------------------------------
def collection_choices(settings: Settings) -> tuple[CollectionChoice, ...]:
    """Every ingested collection, newest first, labelled by model name (fine-tuned dirs by their name) and fingerprint."""
    out = []
    for info in factory(settings).store.collections():
        meta = info.metadata
        ref = str(meta.get("model_ref") or meta.get("model", "?"))
        label = f"{meta.get('model', ref)} · {meta.get('fingerprint', '?')} · {info.count} chunks"
        out.append(CollectionChoice(ref=ref, label=label, collection=info.name, chunks=info.count))
    return tuple(out)


def chat_engine(choice: Choice, spec: str | None = None) -> ChatEngine:
    """A ChatEngine over cached components (the engine itself is a cheap wrapper, made per question)."""
    from rag_app.chat import ChatEngine
    from rag_app.retriever_choice import retriever_label

    settings = choice.settings
    spec = spec or choice.spec()
    llm, _ = _llm(_key(settings, "llm"), settings)
    return ChatEngine.from_factory(factory(settings), llm, spec, choice.filters, choice.top_k, llm_settings=settings.llm,
                                   label=retriever_label(spec, settings))


def llm_notice(settings: Settings) -> str | None:
    """Why the chosen LLM could not start (the pages then show sources only), or None."""
    return _llm(_key(settings, "llm"), settings)[1]


def factory(settings: Settings) -> RetrieverFactory:
    return _factory(_retrieval_key(settings), settings)


def _key(settings: Settings, *sections: str) -> str:
    return settings.model_dump_json(include={"home", *sections})


def _retrieval_key(settings: Settings) -> str:
    return _key(settings, "store", "embedding", "ingest", "retrieval")


@st.cache_resource(show_spinner=False)
def _factory(key: str, _settings: Settings) -> RetrieverFactory:
    from rag_app.retrievers import RetrieverFactory

    return RetrieverFactory.from_settings(_settings)


@st.cache_resource(show_spinner="Starting the language model…")
def _llm(key: str, _settings: Settings) -> tuple[Any, str | None]:
    from rag_app.llms import start_llm

    return start_llm(_settings.llm, _settings.dir("cache"))
