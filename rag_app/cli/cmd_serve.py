"""`jobrag serve`: the HTTP API (FastAPI on uvicorn); SIGTERM lets in-flight requests finish, then exits 0."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Annotated, Optional

import typer

from rag_app.cli.common import EmbedderOpt, LLMOpt, cli_settings, console, quiet_transformers
from rag_app.errors import require_extra


def serve(host: Annotated[Optional[str], typer.Option(help="Interface to bind (default server.host, loopback).")] = None,
          port: Annotated[Optional[int], typer.Option(help="Port (default server.port, 8000).")] = None,
          embedder: EmbedderOpt = None, llm: LLMOpt = None) -> None:
    """Serve the HTTP API: /v1/search, /v1/ask, /v1/chat/completions (OpenAI-compatible), /v1/collections; docs at /docs."""
    for module in ("fastapi", "uvicorn"):
        require_extra(module, "server", "`jobrag serve`")
    import uvicorn

    from rag_app.server.app import create_app

    server = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = cli_settings(embedder, None, llm={"mode": llm} if llm else {}, server=server)
    quiet_transformers()
    s = settings.server
    console.print(f"jobrag API on http://{s.host}:{s.port}  (docs at /docs{', API key required' if s.api_key else ''}; Ctrl+C or SIGTERM stops it)")
    sys.stdout.flush()
    # uvicorn handles SIGTERM (stop accepting, let in-flight requests finish, run shutdown), then raises the signal again
    # for the previous handler: this one, so a clean stop exits 0 instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    level = logging.getLogger().getEffectiveLevel()  # --log-level
    uvicorn.run(create_app(settings), host=s.host, port=s.port, timeout_graceful_shutdown=s.shutdown_timeout_s, log_level=level,
                access_log=level <= logging.INFO, server_header=False)
