"""Helpers shared by the flows: retry options from settings, artifact keys."""

from __future__ import annotations

import re

from prefect.tasks import exponential_backoff

from ragline.settings import RaglineSettings


def with_retries(task, settings: RaglineSettings):
    """The task with the retry policy of the active environment (exponential backoff + jitter)."""
    t = settings.tasks
    return task.with_options(
        retries=t.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=t.retry_delay_s) if t.retries else 0,
        retry_jitter_factor=t.retry_jitter_factor if t.retries else None,
    )


def artifact_key(prefix: str, name: str) -> str:
    """Artifact keys may hold only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{name}".lower()).strip("-")
