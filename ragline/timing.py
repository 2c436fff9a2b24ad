"""Wall-clock timings reported to users (per-file parse seconds, answer timings)."""

from __future__ import annotations

import time


def seconds_since(started: float) -> float:
    """Seconds elapsed since `started` (a `time.perf_counter()` reading), to the millisecond."""
    return round(time.perf_counter() - started, 3)
