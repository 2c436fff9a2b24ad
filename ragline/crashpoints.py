"""Named points where an ingest run can be made to kill itself, to prove it survives SIGKILL.

`RAGLINE_CRASH_AT=commit` (or `commit:3`, the third time) makes the process send itself SIGKILL
when it reaches that point: no cleanup, no atexit, no flush, like `kill -9` or an OOM kill. The
kill tests (tests/test_crash.py) use it to stop a real ingest at exact places that timing could
only hit by luck. Unset (always, outside those tests), `reached` is one dictionary lookup.

Points: `parse` (a file parsed, its batch not yet returned), `embed` (before a batch of chunks is
embedded), `staged` (a batch embedded and written to staging, not yet committed), `commit` (a
document's new chunks are in the collection, its old ones not yet deleted, its manifest record not
yet written), `finalize` (all documents committed, removed ones not yet deleted), `switch` (a
rebuild with a new embedding model complete, the collection not yet switched to it), `switched`
(the switch made, the old collection's data not yet dropped).
"""

from __future__ import annotations

import os
import signal
import threading

ENV_VAR = "RAGLINE_CRASH_AT"
_lock = threading.Lock()
_hits: dict[str, int] = {}


def reached(point: str) -> None:
    wanted = os.environ.get(ENV_VAR)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    with _lock:
        _hits[point] = _hits.get(point, 0) + 1
        if _hits[point] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
