"""Helpers shared by the flows: retry options from settings, which errors are worth a retry,
readable run names, artifact keys, and ragline's own loggers on the run's log in the Prefect UI."""

from __future__ import annotations

import functools
import logging
import re

from prefect import get_run_logger
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler
from prefect.states import Cancelled
from prefect.tasks import exponential_backoff

from ragline.evaluation.metrics import DatasetError
from ragline.ingestion.locking import IngestLockedError
from ragline.settings import RaglineSettings
from ragline.store import EmbedderMismatchError
from ragline.tasks.cancellation import RunCancelledError

# Errors a retry cannot fix: the same input fails the same way, so the user sees the message at
# once instead of after every retry's backoff (minutes in the prod profile). LookupError: an empty
# or missing collection; ValueError: a bad setting or parameter. Everything else (a store or API
# blip, a timeout, a killed parser) is retried.
PERMANENT_ERRORS = (
    EmbedderMismatchError,
    IngestLockedError,  # it already waited ingest.lock_timeout_s for the lock
    DatasetError,
    LookupError,
    ValueError,
    FileNotFoundError,
    RunCancelledError,
)


def retry_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry unless the task failed with a permanent error."""
    return not isinstance(state.data, PERMANENT_ERRORS)


def with_retries(task, settings: RaglineSettings):
    """The task with the retry policy of the active environment (exponential backoff + jitter),
    retrying only errors that can succeed on a retry."""
    t = settings.tasks
    return task.with_options(
        retries=t.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=t.retry_delay_s) if t.retries else 0,
        retry_jitter_factor=t.retry_jitter_factor if t.retries else None,
        retry_condition_fn=retry_transient,
    )


def cancellable(fn):
    """Make a flow that stops with RunCancelledError end Cancelled (not Failed): a flow that
    returns a State ends in it. Goes between @flow and the function; keeps its signature."""

    @functools.wraps(fn)
    def stop_as_cancelled(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RunCancelledError as exc:
            get_run_logger().warning("%s", exc)
            return Cancelled(message=str(exc))

    return stop_as_cancelled


def artifact_key(prefix: str, name: str) -> str:
    """Artifact keys may hold only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{name}".lower()).strip("-")


def run_parameter(name: str, default=None):
    from prefect.runtime import flow_run

    return (flow_run.parameters or {}).get(name) or default


def ingest_run_name() -> str:
    """`ingest-<collection>-<folder>`: the run list says what was synced where."""
    from pathlib import Path

    collection = run_parameter("collection") or "default"
    folder = Path(str(run_parameter("path", ""))).name or "root"
    return f"ingest-{collection}-{folder}"[:100]


def ask_run_name() -> str:
    """`ask: <the question>`, shortened: the run list reads as the questions asked."""
    question = " ".join(str(run_parameter("question", "")).split())
    return f"ask: {question[:60]}{'...' if len(question) > 60 else ''}"


# ---------------------------------------------------------------------------------------------
# ragline's own loggers (`ragline.*`: the ingest lock, the sync plan, serve) on the run's log.
#
# Prefect sends only its run loggers to the API. PREFECT_LOGGING_EXTRA_LOGGERS=ragline would add
# the API handler too, but it warns for every record logged outside a run (serve's own messages);
# this handler sends the records logged inside a flow or task run, and drops the others silently.
# ---------------------------------------------------------------------------------------------


class RunLogHandler(APILogHandler):
    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        super().emit(record)


def send_ragline_logs_to_runs() -> None:
    """Attach RunLogHandler to the `ragline` logger once; INFO and up, unless set otherwise."""
    logger = logging.getLogger("ragline")
    if not any(isinstance(h, RunLogHandler) for h in logger.handlers):
        logger.addHandler(RunLogHandler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


send_ragline_logs_to_runs()
