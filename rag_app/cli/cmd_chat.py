"""Asking questions: `jobrag ask`, `jobrag chat` (history, follow-ups) and `jobrag ui` (the Streamlit app)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from rag_app.cli.common import (
    EmbedderOpt,
    FilterOpt,
    LLMOpt,
    RetrieverOpt,
    TopKOpt,
    cli_settings,
    console,
    parse_filters,
    quiet_transformers,
)
from rag_app.errors import ConfigError, require_extra
from rag_app.safe_text import inert

UnderstandOpt = Annotated[Optional[bool], typer.Option("--understand/--no-understand", help="Apply the constraints understood from the "
                                                       "question as filters (default retrieval.understand).")]
IgnoreOpt = Annotated[Optional[list[str]], typer.Option("--ignore", help="Drop an understood constraint: location, workplace, employment, "
                                                                        "min_pay or level (repeatable).")]


def _chat_engine(embedder: str | None, retriever: str | None, llm: str | None, filters: list[str] | None, top_k: int | None,
                 understand: bool | None = None) -> Any:
    from rag_app.chat import ChatEngine
    from rag_app.llms import start_llm
    from rag_app.retriever_choice import retriever_label
    from rag_app.retrievers import RetrieverFactory

    settings = cli_settings(embedder, None, llm={"mode": llm} if llm else {})
    parsed = parse_filters(filters)  # None: retrieval.filters from the settings
    quiet_transformers()
    spec = retriever or settings.retrieval.mode
    model, notice = start_llm(settings.llm, settings.dir("cache"))
    return ChatEngine.from_factory(RetrieverFactory.from_settings(settings), model, spec, parsed, top_k, understand=understand,
                                   label=retriever_label(spec, settings)), notice


def _print_answer(answer: Any, streamed: bool) -> None:
    if not streamed:
        console.print(answer.text, markup=False, highlight=False)
    if answer.understood_filters:
        state = "applied" if answer.constraints_applied else "not applied"
        console.print(f"understood ({state}): " + " · ".join(f"{c.label} [{c.key}]" for c in answer.understood_filters), markup=False)
    if answer.notice:
        console.print(f"[yellow]notice:[/yellow] {answer.notice}")
    table = Table(title="sources", title_justify="left")
    for col in ("#", "id", "listing", "score", "cited", "misses"):
        table.add_column(col)
    for s in answer.sources:
        table.add_row(str(s.rank), s.id, inert(s.header()), f"{s.score:.3f}", "✓" if s.id in answer.cited_ids else "", "; ".join(s.unmet))
    console.print(table, markup=False)


def ask(question: Annotated[str, typer.Argument(help="A question about jobs.")], embedder: EmbedderOpt = None, retriever: RetrieverOpt = None,
        llm: LLMOpt = None, filters: FilterOpt = None, top_k: TopKOpt = None, understand: UnderstandOpt = None, ignore: IgnoreOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the Answer record as JSON.")] = False) -> None:
    """Answer one question from the listings, citing them as \\[id]; prints what it understood from the question."""
    engine, notice = _chat_engine(embedder, retriever, llm, filters, top_k, understand)
    answer, streamed = None, False
    for event in engine.stream(question, ignore=ignore or ()):
        if event.kind == "token" and not as_json:
            print(event.data, end="", flush=True)
            streamed = True
        elif event.kind == "answer":
            answer = event.data
    if notice:
        answer.notice = f"{notice} {answer.notice or ''}".strip()
    if as_json:
        print(answer.model_dump_json(indent=2))
        return
    if streamed:
        print()
    _print_answer(answer, streamed)


def chat(embedder: EmbedderOpt = None, retriever: RetrieverOpt = None, llm: LLMOpt = None, filters: FilterOpt = None, top_k: TopKOpt = None,
         understand: UnderstandOpt = None) -> None:
    """Interactive chat with history (follow-ups like "which of those are remote?"). /reset clears, /quit leaves."""
    engine, notice = _chat_engine(embedder, retriever, llm, filters, top_k, understand)
    if notice:
        console.print(f"[yellow]notice:[/yellow] {notice}")
    history: list[Any] = []
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if question in ("/quit", "/exit"):
            break
        if question == "/reset":
            history.clear()
            continue
        if not question:
            continue
        answer = None
        for event in engine.stream(question, history):
            if event.kind == "token":
                print(event.data, end="", flush=True)
            elif event.kind == "answer":
                answer = event.data
        print()
        _print_answer(answer, streamed=answer.timings.get("tokens", 0) > 0)
        history.append(answer)


def ui(host: Annotated[str, typer.Option(help="Interface to serve on (loopback by default).")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="Port.")] = 8501) -> None:
    """Serve the Streamlit UI (chat, A/B, compare reports) at http://HOST:PORT."""
    import importlib.util
    import os
    from pathlib import Path

    require_extra("streamlit", "ui", "`jobrag ui`")
    spec = importlib.util.find_spec("streamlit_app")
    script = Path(spec.origin) if spec and spec.origin else Path(__file__).resolve().parents[2] / "streamlit_app.py"
    if not script.exists():
        raise ConfigError(f"{script} not found: install jobrag from its source tree (pip install -e '.[ui]')")
    console.print(f"jobrag UI on http://{host}:{port}  (Ctrl+C or SIGTERM stops it)")
    sys.stdout.flush()
    sys.stderr.flush()
    # streamlit replaces this process (same pid): a signal for `jobrag ui` reaches the server itself, and nothing is left behind
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", host, "--server.port", str(port),
           "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "minimal"]
    os.execv(sys.executable, cmd)
