"""A/B page: one question, two retrievers side by side (sources with ranks and scores, both answers, overlap)."""

from __future__ import annotations

import time

import streamlit as st

from rag_app.errors import JobragError
from rag_app.settings import RETRIEVER_MODES
from rag_app.ui.render import escape_md, show_answer, show_error
from rag_app.ui.state import Choice, chat_engine, current_choice, explain_no_collection


def render() -> None:
    choice = current_choice()
    st.title("A/B: two retrievers, one question")
    if not choice.collections:
        explain_no_collection(choice)
        return
    left_col, right_col = st.columns(2)
    # default: the two newest collections (e.g. fine-tuned vs base); with one collection, dense vs BM25
    two = len(choice.collections) > 1
    left, left_title = _side(left_col, choice, "A", 1 if two else 0, "dense")
    right, right_title = _side(right_col, choice, "B", 0, "dense" if two else "bm25")
    question = st.text_input("Question", key="ab_question", placeholder="e.g. part-time pharmacy technician in Chicago")
    generate = st.checkbox("Also generate both answers (LLM)", value=choice.settings.llm.mode != "none", key="ab_generate")
    if not (st.button("Compare", key="ab_run", type="primary") and question):
        return
    started = time.perf_counter()
    answers = {}
    for label, spec, column in (("A", left, left_col), ("B", right, right_col)):
        with column:
            try:
                engine = chat_engine(choice, spec)
                if not generate:
                    engine.llm = None
                with st.spinner(f"{label}: retrieving{' and answering' if generate else ''}…"):
                    answers[label] = engine.ask(question)
            except JobragError as exc:  # e.g. no BM25 index for this collection: say so on its side, keep the other
                show_error(exc)
    seconds = time.perf_counter() - started
    if len(answers) == 2:
        ids = {k: [s.id for s in a.sources] for k, a in answers.items()}
        st.info(overlap_note(ids["A"], ids["B"]))
    for label, title, column in (("A", left_title, left_col), ("B", right_title, right_col)):
        if label in answers:
            with column:
                st.subheader(f"{label}: {escape_md(title)}")
                st.dataframe([{"rank": s.rank, "id": s.id, "listing": s.header(), "score": round(s.score, 4)} for s in answers[label].sources],
                             hide_index=True, key=f"ab_table_{label}")
                show_answer(answers[label])
    st.caption(f"A/B page time: {seconds:.2f} s")


def _side(column, choice: Choice, name: str, default_collection: int, default_mode: str) -> tuple[str, str]:
    """One side's collection and retriever mode pickers; returns its retriever spec and a title."""
    with column:
        labels = [c.label for c in choice.collections]
        picked = st.selectbox(f"{name}: embedder", labels, index=min(default_collection, len(labels) - 1), key=f"ab_model_{name}")
        mode = st.radio(f"{name}: retriever", RETRIEVER_MODES, index=RETRIEVER_MODES.index(default_mode), horizontal=True,
                        key=f"ab_mode_{name}")
        return choice.spec(mode, choice.collections[labels.index(picked)]), f"{mode} · {picked.split(' · ')[0]}"


def overlap_note(left: list[str], right: list[str]) -> str:
    """How much two rankings agree: shared listings, their Jaccard index, and whether the top hit is the same."""
    shared = set(left) & set(right)
    same_top = bool(left and right and left[0] == right[0])
    return (f"{len(shared)} of {max(len(left), len(right))} listings appear in both lists "
            f"(Jaccard {len(shared) / max(len(set(left) | set(right)), 1):.2f}); top-1 {'agrees' if same_top else 'differs'}.")


render()
