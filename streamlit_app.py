"""jobrag's Streamlit UI: `jobrag ui` (or `streamlit run streamlit_app.py`).

Pages: Chat (streaming, cited answers), A/B (two retrievers side by side), Reports (compare runs). The sidebar picks
the embedder/collection, retriever, top-k, filters and LLM for every page; components are built once per settings.
"""

from __future__ import annotations

import os

import streamlit as st

from rag_app.ui.state import sidebar

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

st.set_page_config(page_title="jobrag", page_icon=":material/work:", layout="wide")
page = st.navigation([
    st.Page("rag_app/ui/chat_page.py", title="Chat", icon=":material/chat:", url_path="chat", default=True),
    st.Page("rag_app/ui/ab_page.py", title="A/B", icon=":material/compare:", url_path="ab"),
    st.Page("rag_app/ui/reports_page.py", title="Reports", icon=":material/monitoring:", url_path="reports"),
])
sidebar()
page.run()
