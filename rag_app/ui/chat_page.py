"""Chat page: streaming answers with [id] citations, expandable sources, follow-ups with history."""

from __future__ import annotations

import streamlit as st

from rag_app.ui.common import chat_engine, current_choice, escape_md, llm_notice, show_answer, stream_markdown


def render() -> None:
    choice = current_choice()
    st.title("Chat with the listings")
    # first, so the input shows while models load (Streamlit pins it to the bottom wherever it is called)
    question = st.chat_input("Ask about jobs, e.g. “remote data engineer jobs paying over $120k”")
    history = st.session_state.setdefault("history", [])
    if st.sidebar.button("Clear chat", key="clear_chat"):
        history.clear()
    if choice.model is None and choice.kind != "bm25":
        st.info("Ingest listings first, e.g. `jobrag ingest --source sample`.")
        return
    if notice := llm_notice(choice.settings):
        st.warning(notice, icon="⚠️")
    for i, answer in enumerate(history):
        with st.chat_message("user"):
            st.text(answer.question)
        with st.chat_message("assistant"):
            show_answer(answer, key=f"h{i}")
    if not question:
        return
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        try:
            answer, streamed = stream_markdown(chat_engine(choice), question, list(history))
        except Exception as exc:  # e.g. no collection for this model yet, or the store is unreachable: say so
            st.error(escape_md(f"{exc.__class__.__name__}: {exc}"))
            return
        show_answer(answer, key=f"h{len(history)}", streamed=streamed)
    history.append(answer)


render()
