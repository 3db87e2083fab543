"""One writer per collection: a `filelock` lock under `<home>/locks/`, with a sidecar file that names its holder.

`filelock` takes an OS lock (flock on Unix) that the kernel drops when its process dies, `kill -9` included, so a
crashed ingest never leaves a stale lock behind; the sidecar it leaves is overwritten by the next holder. A second
writer waits up to `ingest.lock_timeout_s`, logging who holds the lock, then fails with one line naming the holder.

The lock serialises writers that share `<home>` (one machine or a shared filesystem). Writers of disjoint shards of
one collection (`shard=(K, N)`, e.g. N machines feeding one Chroma server) take one lock name per shard and never
block each other.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag_app.errors import CollectionLockedError

logger = logging.getLogger(__name__)


def lock_name(collection: str, shard: tuple[int, int] | None = None) -> str:
    """'jobs-abc' or, for shard K of N, 'jobs-abc.shard-K-of-N' (shards write disjoint listings: separate locks)."""
    if shard is None:
        return collection
    k, n = shard
    if not 1 <= k <= n:
        raise ValueError(f"shard {k}/{n}: K must be between 1 and N")
    return f"{collection}.shard-{k}-of-{n}"


class CollectionLock:
    """`with CollectionLock(...)`: hold the collection's write lock for the block, recording who holds it."""

    def __init__(self, locks_dir: Path, collection: str, source: str, timeout_s: float | None,
                 shard: tuple[int, int] | None = None, report_every_s: float = 10.0) -> None:
        from filelock import FileLock

        self.name = lock_name(collection, shard)
        locks_dir.mkdir(parents=True, exist_ok=True)
        self.path = locks_dir / f"{self.name}.lock"
        self.sidecar = locks_dir / f"{self.name}.holder.json"
        self.source, self.timeout_s, self.report_every_s = source, timeout_s, report_every_s
        self._lock = FileLock(self.path)

    def holder(self) -> dict[str, Any] | None:
        """What the current holder wrote about itself (None while it has not written yet, or after a clean release)."""
        try:
            return json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def describe_holder(self) -> str:
        h = self.holder()
        if not h:
            return "another process (it has not named itself yet)"
        return f"pid {h.get('pid')} on {h.get('host')}, since {h.get('since')}, source {h.get('source')!r}"

    def __enter__(self) -> CollectionLock:
        from filelock import Timeout

        started = time.monotonic()
        deadline = None if self.timeout_s is None else started + self.timeout_s
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            while True:
                waited = time.monotonic() - started
                if deadline is not None and time.monotonic() >= deadline:
                    raise CollectionLockedError(
                        f"collection {self.name!r} is being written by another ingest ({self.describe_holder()}); gave up after "
                        f"{waited:.0f}s (ingest.lock_timeout_s={self.timeout_s:g}): let it finish, or raise ingest.lock_timeout_s") from None
                logger.warning("collection %s is locked by %s; waiting (%.0fs so far, ingest.lock_timeout_s=%s)", self.name,
                               self.describe_holder(), waited, "none" if self.timeout_s is None else f"{self.timeout_s:g}")
                step = self.report_every_s if deadline is None else max(0.0, min(self.report_every_s, deadline - time.monotonic()))
                try:
                    self._lock.acquire(timeout=step)
                    break
                except Timeout:
                    continue
        self._write_sidecar()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sidecar.unlink(missing_ok=True)
        self._lock.release()

    def _write_sidecar(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "source": self.source, "lock": self.name}
        tmp = self.sidecar.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, self.sidecar)  # a waiter never reads half a file
