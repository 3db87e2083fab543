"""`jobrag serve`: the HTTP API (FastAPI on uvicorn); SIGTERM lets in-flight requests finish, then exits 0."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from typing import Annotated, Any, Optional

import typer

from rag_app.cli.common import EmbedderOpt, LLMOpt, cli_settings, console, quiet_transformers
from rag_app.errors import ConfigError, require_extra


def serve(host: Annotated[Optional[str], typer.Option(help="Interface to bind (default server.host, loopback).")] = None,
          port: Annotated[Optional[int], typer.Option(help="Port (default server.port, 8000).")] = None,
          workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default server.workers, 1); over 1 needs "
                                                                      "store.mode http (a Chroma server).")] = None,
          embedder: EmbedderOpt = None, llm: LLMOpt = None) -> None:
    """Serve the HTTP API: /v1/search, /v1/ask, /v1/chat/completions (OpenAI-compatible), /v1/collections; docs at /docs."""
    for module in ("fastapi", "uvicorn"):
        require_extra(module, "server", "`jobrag serve`")
    import uvicorn

    from rag_app.server.app import SETTINGS_ENV, create_app

    server = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    settings = cli_settings(embedder, None, llm={"mode": llm} if llm else {}, server=server)
    quiet_transformers()
    s = settings.server
    if s.workers > 1 and settings.store.mode != "http":
        raise ConfigError(f"{s.workers} workers need a Chroma server: embedded Chroma ({settings.store.mode}) is not safe to open from "
                          "several processes. Start `chroma run --path DIR` and set store.mode: http (JOBRAG_STORE__MODE=http), "
                          "or serve with one worker.")
    console.print(f"jobrag API on http://{s.host}:{s.port}  ({s.workers} worker{'s' if s.workers > 1 else ''}; docs at /docs"
                  f"{', API key required' if s.api_key else ''}; Ctrl+C or SIGTERM stops it)")
    sys.stdout.flush()
    # uvicorn handles SIGTERM (stop accepting, let in-flight requests finish, run shutdown), then raises the signal again
    # for the previous handler: this one, so a clean stop exits 0 instead of dying by the signal. With workers, its
    # supervisor passes SIGTERM on to each worker, which does the same.
    signal.signal(signal.SIGTERM, lambda *_: None)
    level = logging.getLogger().getEffectiveLevel()  # --log-level
    common = dict(host=s.host, port=s.port, timeout_graceful_shutdown=s.shutdown_timeout_s, log_level=level,
                  access_log=level <= logging.INFO, server_header=False)
    if s.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    os.environ[SETTINGS_ENV] = json.dumps(settings.model_dump(mode="json") | {"server": _server_fields(settings)})
    uvicorn.run("rag_app.server.app:app_from_env", factory=True, workers=s.workers, **common)


def _server_fields(settings: Any) -> dict[str, Any]:
    """The server settings as JSON, the API key included (model_dump masks secrets): the workers need the real one."""
    fields = settings.server.model_dump(mode="json")
    fields["api_key"] = settings.server.api_key.get_secret_value() if settings.server.api_key else None
    return fields
