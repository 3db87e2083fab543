"""Chat page: streaming answers with [id] citations, expandable sources, follow-ups with history."""

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
    for answer in history:
        with st.chat_message("user"):
            st.text(answer.question)
        with st.chat_message("assistant"):
            show_answer(answer)
    if not question:
        return
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        try:
            answer, streamed = stream_markdown(chat_engine(choice), question, list(history))
        except JobragError as exc:  # e.g. no collection or BM25 index for this model yet, or Chroma unreachable
            show_error(exc)
            return
        show_answer(answer, streamed=streamed)
    history.append(answer)


render()
