"""The Streamlit UI through Streamlit's own AppTest: every page, the model switch, the LLM modes, hostile listings.

Real parts: the packaged MiniLM (and a 3-layer variant standing in for a fine-tuned model), Chroma on disk, the local
SmolLM2 GGUF, a real `jobrag compare` report. The only fake is the unreachable OpenAI endpoint of the outage test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"


@pytest.fixture
def app(ui_home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JOBRAG_HOME", str(ui_home))
    monkeypatch.setenv("JOBRAG_LLM__MODE", "none")

    def start(**env: str) -> AppTest:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        at = AppTest.from_file(str(APP), default_timeout=300)
        at.run()
        assert not at.exception, at.exception
        return at

    return start


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def assistant_text(at: AppTest, index: int = -1) -> str:
    messages = [m for m in at.chat_message if m.name == "assistant"]
    return "\n".join(md.value for md in messages[index].markdown)


def test_chat_without_llm_answers_with_cited_expandable_sources_and_follow_ups(app) -> None:
    at = ask(app(), "registered nurse")
    text = assistant_text(at)
    assert "Best matches" in text and "sample-0053" in text  # extractive answer cites the listing ids
    labels = [e.label for e in at.main.expander]
    assert labels[0].startswith("1. ") and any("sample-0053" in label for label in labels)
    facts = [t.value for t in at.main.text if t.value.startswith("company:")]
    assert facts and all("score:" in f and "id:" in f for f in facts)
    assert any("retrieve" in c.value and "via all-MiniLM-L6-v2 + BM25 ·" in c.value for c in at.main.caption)  # hybrid, the default, named
    ask(at, "which of those are part-time?")
    assert len([m for m in at.chat_message if m.name == "assistant"]) == 2  # history kept and re-rendered
    assert not at.warning


def test_hostile_listing_text_is_shown_literally(app) -> None:
    at = ask(app(), "night shift warehouse forklift")
    passage = "\n".join(t.value for t in at.main.text)
    assert "<script>alert('pwned')</script>" in passage  # st.text: shown, never parsed
    answer = assistant_text(at)
    assert "<script>" not in answer and "\\<script\\>" not in answer and "alert" in answer  # inert words, escaped again for markdown
    assert "![pixel](" not in answer and "\\!\\[pixel\\]\\(" not in answer and "pixel" in answer
    labels = [e.label for e in at.expander if "evil-1" in e.label]
    assert labels and not any("http" in label or "pixel](" in label for label in labels)  # labels are markdown: no link survives


def test_understood_constraints_are_chips_and_dropping_one_searches_again(app) -> None:
    at = ask(app(), "part-time registered nurse in Austin, TX")
    chips = at.pills[-1]
    assert chips.options == ["part-time", "in or near Austin, TX (Texas)"] and set(chips.value) == {"employment", "location"}
    assert any("Apply these constraints" == t.label for t in at.toggle)
    chips.unselect("location").run()
    assert not at.exception, at.exception
    assert at.pills[-1].value == ["employment"]
    answers = [m for m in at.chat_message if m.name == "assistant"]
    assert len(answers) == 1  # the last question asked again, not a new turn
    history = at.session_state["history"]
    assert history[-1].ignored_filters == ["location"] and history[-1].question == "part-time registered nurse in Austin, TX"


def test_llm_outage_degrades_to_sources_with_a_notice(app) -> None:
    at = app(JOBRAG_LLM__MODE="openai", JOBRAG_LLM__API_BASE="http://127.0.0.1:9/v1", JOBRAG_LLM__MODEL="m", JOBRAG_LLM__MAX_RETRIES="0", JOBRAG_LLM__TIMEOUT_S="2")
    ask(at, "pharmacy technician")
    assert any("unavailable" in w.value for w in at.warning)
    assert "sample-0047" in assistant_text(at) and at.main.expander


@pytest.mark.slow
def test_local_llm_streams_a_cited_answer(app) -> None:
    at = ask(app(JOBRAG_LLM__MODE="local", JOBRAG_LLM__FRAMING="true"), "registered nurse jobs")
    text = assistant_text(at)
    assert "[" in text and "sample-" in text
    assert any("first token" in c.value and "tok/s" in c.value for c in at.main.caption)
    assert not [w for w in at.warning if "unavailable" in w.value]


def test_switching_the_embedder_uses_that_models_collection(app) -> None:
    at = app()
    picker = at.sidebar.selectbox(key="model")
    assert len(picker.options) == 2 and any("minilm-3layer" in o for o in picker.options)
    picker.select(next(o for o in picker.options if "minilm-3layer" in o)).run()
    ask(at, "pharmacy technician")
    assert any("via minilm-3layer + BM25 ·" in c.value for c in at.main.caption)
    at.sidebar.radio(key="mode").set_value("bm25").run()
    ask(at, "pharmacy technician")
    assert any("via BM25 ·" in c.value for c in at.main.caption)


def test_ab_page_shows_both_rankings_and_their_overlap(app) -> None:
    at = app()
    at.switch_page("rag_app/ui/ab_page.py").run()
    assert not at.exception, at.exception
    at.text_input(key="ab_question").set_value("pharmacy technician")
    at.button(key="ab_run").click().run()
    assert not at.exception, at.exception
    assert any("listings appear in both lists" in i.value for i in at.info)
    tables = [df for df in at.dataframe]
    assert len(tables) == 2 and all(len(t.value) > 0 for t in tables)
    assert any("minilm-3layer" in h.value for h in at.subheader)


def test_reports_page_reads_a_compare_run(app) -> None:
    at = app()
    at.switch_page("rag_app/ui/reports_page.py").run()
    assert not at.exception, at.exception
    summary = at.dataframe[0].value
    assert list(summary["retriever"]) == ["base", "bm25"] and "[" in summary["ndcg@10"][0]  # mean [CI]
    at.selectbox(key="pq_filter").select("b won").run()
    assert not at.exception, at.exception
    shown = at.dataframe[-1].value
    assert (shown["delta"] > 0).all()


def test_an_empty_home_says_what_to_run_instead_of_failing(app, tmp_path: Path) -> None:
    at = app(JOBRAG_HOME=str(tmp_path / "empty-home"))
    assert any("jobrag ingest" in w.value for w in at.sidebar.warning)
    assert any("jobrag ingest" in i.value for i in at.info)
    at.sidebar.radio(key="mode").set_value("bm25").run()
    ask(at, "nurse")
    assert any("ingest" in e.value for e in at.error)


def test_an_unreachable_chroma_server_is_one_actionable_error_line(app) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    at = app(JOBRAG_STORE__MODE="http", JOBRAG_STORE__PORT=str(port))  # the store's ConfigError, shown instead of raised
    assert any("cannot open Chroma" in e.value for e in at.sidebar.error)
    assert any("chroma run" in e.value for e in at.main.error) and not at.info  # not mistaken for "nothing ingested"
    at.sidebar.radio(key="mode").set_value("bm25").run()
    ask(at, "nurse")
    assert any("cannot open Chroma" in e.value for e in at.main.error)


def test_a_bug_is_raised_not_shown_as_a_missing_collection(app, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_app.chat import ChatEngine

    def broken(self, *args):
        raise KeyError("a bug in retrieval")

    monkeypatch.setattr(ChatEngine, "_retrieve", broken)
    at = app()
    at.chat_input[0].set_value("pharmacy technician").run()
    assert any("a bug in retrieval" in e.message for e in at.exception) and not at.error  # Streamlit's traceback, not a user error
    at.switch_page("rag_app/ui/ab_page.py").run()
    at.text_input(key="ab_question").set_value("pharmacy technician")
    at.button(key="ab_run").click().run()
    assert any("a bug in retrieval" in e.message for e in at.exception) and not at.error
