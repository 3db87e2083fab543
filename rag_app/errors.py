"""User-facing errors: the CLI prints them as one line and exits non-zero, without a traceback."""

from __future__ import annotations


class JobragError(Exception):
    """An error the user can act on; its message says what to do."""

    exit_code = 1


class ConfigError(JobragError):
    """Invalid settings, unknown mode, or a missing optional dependency."""

    exit_code = 2


class SourceError(JobragError):
    """A source that cannot be read at all: missing path, wrong mapping, empty file, unreachable hub dataset."""

    exit_code = 2


class FingerprintMismatchError(JobragError):
    """Vectors of one embedder were about to be written into another embedder's collection."""

    exit_code = 3


class CollectionLockedError(JobragError):
    """Another ingest held the collection's write lock for longer than ingest.lock_timeout_s."""

    exit_code = 5


class NothingIngestedError(JobragError):
    """Every row of the source was rejected."""

    exit_code = 4


def require_extra(module: str, extra: str, what: str) -> None:
    """One line naming the extra to install when an optional dependency is missing (instead of an ImportError traceback)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the optional `{extra}` dependencies ({module} is not installed): pip install 'jobrag[{extra}]'")


def unknown_mode(kind: str, mode: str, valid: tuple[str, ...] | list[str]) -> ConfigError:
    return ConfigError(f"unknown {kind} mode {mode!r}; valid modes: {', '.join(valid)}")
