"""One ingest at a time per collection: an OS file lock under the data dir.

Two runs syncing the same collection at once would both stage, promote and prune the same
documents, and the embedded engine can only be opened by one process anyway. The lock is an
`flock` on `<data_dir>/locks/ingest-<collection>.lock`: the kernel releases it when its holder
exits or is killed, so a crashed run never leaves a stale lock behind. A second run waits for it
(up to `ingest.lock_timeout_s`), logging who holds it, then fails with a message saying so.
flock locks belong to an open file, so two runs in one process (threads) exclude each other too.
"""

from __future__ import annotations

import logging
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

from ragline import file_locks

POLL_S = 0.2
logger = logging.getLogger(__name__)


class IngestLockedError(RuntimeError):
    """Another ingest run holds the collection's lock and did not release it in time."""


def lock_file(data_dir: str | Path, collection: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", collection)
    return Path(data_dir).resolve() / "locks" / f"ingest-{safe}.lock"


def _try_lock(handle) -> bool:
    return file_locks.try_lock_exclusive(handle)


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return f"process {text}" if text else "another process"


@contextmanager
def ingest_lock(data_dir: str | Path, collection: str, timeout_s: float):
    """Hold the collection's ingest lock for the body; waits up to `timeout_s` for it."""
    path = lock_file(data_dir, collection)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        if not _try_lock(handle):
            logger.warning(
                "waiting for the ingest run of %s (%s) to finish (up to %.0f s, ingest.lock_timeout_s)",
                collection,
                _holder(path),
                timeout_s,
            )
            deadline = time.monotonic() + timeout_s
            while not _try_lock(handle):
                if time.monotonic() >= deadline:
                    raise IngestLockedError(
                        f"another ingest run ({_holder(path)}) is still writing collection "
                        f"{collection!r}; it holds {path}. Wait for it to finish and re-run, or "
                        "raise ingest.lock_timeout_s (RAGLINE_INGEST__LOCK_TIMEOUT_S) to wait longer."
                    )
                time.sleep(POLL_S)
        _record_holder(handle)
        logger.info("took the ingest lock of collection %s (%s)", collection, path)
        yield path
    finally:
        handle.close()  # closing the last descriptor releases the flock


@contextmanager
def ingest_lock_if_free(data_dir: str | Path, collection: str):
    """The collection's ingest lock if no run holds it: yields False at once instead of waiting
    when one does (the CLI's preview of a run, ragline/ingestion/preview.py)."""
    path = lock_file(data_dir, collection)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:  # closing the descriptor releases the lock
        if not _try_lock(handle):
            yield False
            return
        _record_holder(handle)
        yield True


def _record_holder(handle) -> None:
    """Write this process's pid into the held lock file: a waiting run names who holds it."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
