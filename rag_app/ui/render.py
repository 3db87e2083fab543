"""Safe rendering for every page: answers, their sources and timings, streamed tokens, one-line project errors.

Listing text is employer-written and untrusted: it is shown with `st.text` (never parsed) or escaped before any
markdown, so links, images, HTML and emphasis in a listing show literally and nothing in it is fetched or run.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import streamlit as st

from rag_app.safe_text import inert

if TYPE_CHECKING:
    from rag_app.chat import ChatEngine
    from rag_app.errors import JobragError
    from rag_app.records import Answer, SourceListing

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+!|<>~$:])")


def escape_md(text: str) -> str:
    """Untrusted text made inert for markdown: links, images, HTML and emphasis show literally."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def show_error(error: JobragError | str) -> None:
    """A project error (its message says what to do) as one red line; bugs are not shown here but propagate."""
    st.error(escape_md(str(error)), icon=":material/error:")


def show_answer(answer: Answer, streamed: bool = False) -> None:
    """The answer (unless it was streamed already), its notice, timings and sources."""
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
    show_sources(answer.sources, answer.cited_ids)


def show_sources(sources: list[SourceListing], cited: list[str]) -> None:
    """Each listing expandable: facts, the matching chunk and the retriever score, all as plain text."""
    for s in sources:
        mark = " · cited" if s.id in cited else ""
        # a label is markdown, and markdown autolinks bare URLs however they are escaped: the title is made inert first
        with st.expander(f"{s.rank}. [{escape_md(inert(s.id))}] {escape_md(inert(s.title))}{mark}", expanded=False):
            facts = {"company": s.company, "location": s.location, "pay": s.salary, "work type": s.work_type,
                     "score": f"{s.score:.4f}", "id": s.id}
            st.text("\n".join(f"{k}: {v}" for k, v in facts.items() if v))
            st.caption("matching passage")
            st.text(s.chunk)


def stream_markdown(engine: ChatEngine, question: str, history: list[Answer], ignore: list[str] = (), apply: bool = True) -> tuple[Answer, bool]:
    """Stream escaped tokens into the page; return the final Answer and whether any token was streamed."""
    holder: dict[str, Any] = {}

    def tokens():
        for event in engine.stream(question, history, ignore=ignore, constraints=apply):
            if event.kind == "token" and event.data:
                holder["streamed"] = True
                yield escape_md(event.data).replace("\n", "  \n")
            elif event.kind == "answer":
                holder["answer"] = event.data

    st.write_stream(tokens())
    return holder["answer"], bool(holder.get("streamed"))
