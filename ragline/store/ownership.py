"""Who owns the embedded store while `ragline serve` runs.

An embedded Qdrant engine (qdrant-edge) can be opened by one process only: a second process gets
"Can't init WAL: WouldBlock". `ragline serve` therefore holds an exclusive lock next to the store
for as long as it runs and records its Prefect API URL in it; `ragline ingest` and `ragline ask`
see the lock and send their work to the serving process (through Prefect) instead of opening the
store themselves. The lock is an OS file lock, so a crashed server never leaves a stale owner.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ragline import file_locks

LOCK_NAME = "serve.lock"


class StoreBusyError(RuntimeError):
    """Another process already owns the embedded store."""


@dataclass(frozen=True)
class ServeOwner:
    pid: int
    api_url: str
    started: float


def lock_path(settings) -> Path:
    return Path(settings.store_path).resolve() / LOCK_NAME


def owns_embedded_store(settings) -> bool:
    """Only the embedded engine needs one owner; a Qdrant server takes many clients."""
    return settings.store.kind == "edge"


class ServeLock:
    """The exclusive claim `ragline serve` holds on the store folder; release() or exit frees it."""

    def __init__(self, path: Path, handle):
        self.path = path
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            file_locks.unlock(self._handle)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ServeLock:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def claim(settings, api_url: str) -> ServeLock:
    """Take ownership of the store for this process, or raise StoreBusyError naming the owner."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    if not file_locks.try_lock_exclusive(handle):
        handle.close()
        owner = current_owner(settings)
        who = f"process {owner.pid} (Prefect API {owner.api_url})" if owner else "another process"
        raise StoreBusyError(
            f"the store at {path.parent} is already served by {who}; stop that `ragline serve` "
            "first, or give this one another data dir (RAGLINE_DATA_DIR)."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "api_url": api_url, "started": time.time()}))
    handle.flush()
    return ServeLock(path, handle)


def current_owner(settings) -> ServeOwner | None:
    """The running `ragline serve` that owns this store, or None when no process holds the lock."""
    path = lock_path(settings)
    if not owns_embedded_store(settings) or not path.exists():
        return None
    with open(path) as handle:
        if file_locks.try_lock_shared(handle):
            file_locks.unlock(handle)
            return None
        # held: someone serves; read who
        try:
            data = json.loads(handle.read() or "{}")
            return ServeOwner(int(data["pid"]), str(data["api_url"]), float(data["started"]))
        except (ValueError, KeyError):
            return ServeOwner(0, "unknown", 0.0)  # the owner is still writing its record
