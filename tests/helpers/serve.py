"""Real `jobrag serve` processes for tests: an environment that reads no developer settings, and an SSE reader."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import REPO


def serve_env(home: Path, config_dir: Path, **settings: str) -> dict[str, str]:
    """The whole environment of a jobrag subprocess: this checkout's code, `home`, no settings.yaml, and `settings` as
    JOBRAG_* variables (`llm__mode="none"` -> JOBRAG_LLM__MODE=none)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRAG_")}
    env |= {"JOBRAG_HOME": str(home), "JOBRAG_CONFIG_DIR": str(config_dir), "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    return env | {f"JOBRAG_{key.upper()}": value for key, value in settings.items()}


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name or None, data) for each server-sent event in a response body."""
    events = []
    for block in text.strip().split("\n\n"):
        name = next((line[7:] for line in block.splitlines() if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        events.append((name, data))
    return events


def sse_json(text: str) -> list[tuple[str | None, object]]:
    return [(name, data if data == "[DONE]" else json.loads(data)) for name, data in sse_events(text)]
