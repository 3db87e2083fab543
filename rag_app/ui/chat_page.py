"""Chat page: streaming answers with [id] citations, what was understood as removable chips, expandable sources."""

from __future__ import annotations

import streamlit as st

from rag_app.errors import JobragError
from rag_app.ui.render import show_answer, show_error, stream_markdown
from rag_app.ui.state import chat_engine, current_choice, explain_no_collection, llm_notice


def render() -> None:
    choice = current_choice()
    st.title("Chat with the listings")
    # first, so the input shows while models load (Streamlit pins it to the bottom wherever it is called)
    question = st.chat_input("Ask about jobs, e.g. “remote data engineer jobs paying over $120k”")
    history = st.session_state.setdefault("history", [])
    if st.sidebar.button("Clear chat", key="clear_chat"):
        history.clear()
    if choice.collection is None and choice.mode != "bm25":
        explain_no_collection(choice)
        return
    if notice := llm_notice(choice.settings):
        st.warning(notice, icon="⚠️")
    redo = st.session_state.pop("redo", None)  # the last question again, with the user's change to its constraints
    shown = history[:-1] if redo else history
    for i, answer in enumerate(shown):
        with st.chat_message("user"):
            st.text(answer.question)
        with st.chat_message("assistant"):
            show_answer(answer)
            constraint_chips(answer, i, latest=i == len(shown) - 1 and not redo and not question)
    if redo:
        question, ignore, apply = redo
        history.pop()
    elif question:
        ignore, apply = [], True
    else:
        return
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        try:
            answer, streamed = stream_markdown(chat_engine(choice), question, list(history), ignore, apply)
        except JobragError as exc:  # e.g. no collection or BM25 index for this model yet, or Chroma unreachable
            show_error(exc)
            return
        show_answer(answer, streamed=streamed)
        history.append(answer)
        constraint_chips(answer, len(history) - 1, latest=True)


def constraint_chips(answer, i: int, latest: bool) -> None:
    """What was understood, as chips: dropping one (or switching them all off) asks the last question again."""
    if not answer.understood_filters:
        return
    labels = {c.key: c.label for c in answer.understood_filters}
    applied = [k for k in labels if k not in answer.ignored_filters]
    with st.container(key=f"chips_{i}"):
        kept = st.pills("Understood from your question (click one to drop it)", list(labels), format_func=labels.get,
                        selection_mode="multi", default=applied, key=f"pills_{i}", disabled=not latest)
        on = st.toggle("Apply these constraints", value=answer.constraints_applied or not applied, key=f"apply_{i}", disabled=not latest)
    if latest and (set(kept) != set(applied) or on != (answer.constraints_applied or not applied)):
        st.session_state["redo"] = (answer.question, [k for k in labels if k not in kept], on)
        st.rerun()


render()
