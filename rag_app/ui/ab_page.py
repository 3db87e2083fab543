"""A/B page: one question, two retrievers side by side (sources with ranks and scores, both answers, overlap)."""

from __future__ import annotations

import time

import streamlit as st

from rag_app.ui.common import RETRIEVER_KINDS, chat_engine, current_choice, escape_md, overlap_note, show_answer


def _side(column, choice, name: str, default_model: int, default_kind: str):
    with column:
        labels = [m.label for m in choice.models]
        picked = st.selectbox(f"{name}: embedder", labels, index=min(default_model, len(labels) - 1), key=f"ab_model_{name}")
        kind = st.radio(f"{name}: retriever", RETRIEVER_KINDS, index=RETRIEVER_KINDS.index(default_kind), horizontal=True,
                        key=f"ab_kind_{name}")
        return choice.spec(kind, choice.models[labels.index(picked)]), f"{kind} · {picked.split(' · ')[0]}"


def render() -> None:
    choice = current_choice()
    st.title("A/B: two retrievers, one question")
    if not choice.models:
        st.info("Ingest listings first, e.g. `jobrag ingest --source sample`.")
        return
    left_col, right_col = st.columns(2)
    # default: the two newest collections (e.g. fine-tuned vs base); with one collection, dense vs BM25
    two = len(choice.models) > 1
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
            except Exception as exc:  # a model without a collection: say so on its side, keep the other
                st.error(escape_md(str(exc)))
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
                show_answer(answers[label], key=f"ab_{label}")
    st.caption(f"A/B page time: {seconds:.2f} s")


render()
