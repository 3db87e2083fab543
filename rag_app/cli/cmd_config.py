"""`jobrag config show`: the effective settings and where they came from."""

from __future__ import annotations

import os

from rag_app.cli.common import console
from rag_app.settings import load_settings, settings_files


def show() -> None:
    """Print the effective settings (secrets masked) and the files they came from."""
    import yaml

    settings = load_settings()
    files = [str(p) for p in settings_files()] or ["(no settings files; defaults and env only)"]
    console.print(f"# from: {', '.join(files)}; env JOBRAG_* overrides; profiles: {os.environ.get('JOBRAG_PROFILES') or 'none'}")
    console.print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), markup=False)
