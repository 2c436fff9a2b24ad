"""What every `ragline` sub-command shares: consoles, one-line errors, settings, the Prefect API."""

from __future__ import annotations

import os
from contextlib import contextmanager

import typer
from rich.console import Console

from ragline.settings import RaglineSettings

# soft_wrap: an error stays one line, however narrow the terminal.
console = Console(stderr=True, soft_wrap=True)
out = Console()


def quiet_terminal_logs() -> None:
    """Keep Prefect's INFO lines off the terminal while runs still send them to the API.

    Called before Prefect is imported (it configures logging on import). The level of Prefect's
    loggers stays INFO, so every flow and task run (and ragline's own loggers, see
    ragline/flows/common.py) has its INFO log in the UI; only the console handler shows
    WARNING and up. PREFECT_LOGGING_LEVEL=WARNING, used before, silenced the run logs themselves.
    Set PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=INFO to see them in the terminal too.
    """
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def fail(message: str) -> None:
    """Print a user-fixable error as one line (no traceback) and exit with status 1."""
    typer.secho(f"error: {' '.join(message.split())}", err=True, fg="red")
    raise typer.Exit(code=1)


def load_settings() -> RaglineSettings:
    from ragline.settings import get_settings

    try:
        return get_settings()
    except Exception as exc:  # pydantic validation errors name the bad setting
        fail(f"invalid settings: {exc}")


def connect_prefect(settings: RaglineSettings) -> str:
    from ragline.deployments.local_server import ensure_prefect_api

    try:
        return ensure_prefect_api(settings)
    except (RuntimeError, ValueError) as exc:
        fail(str(exc))


def warm_answer_models(settings: RaglineSettings) -> None:
    """Load the embedder (and the generator when the answer mode generates) and open the store in
    a background thread, while the caller imports Prefect and the flow: that import is Python that
    holds the GIL, the loads run mostly in native code that releases it. The flow's get_embedder /
    get_generator return the same per-process objects and wait for a load under way; a load that
    fails here fails again in the flow, which reports it."""
    import threading

    def warm() -> None:
        from ragline.answering import answer_mode, load_answer_models
        from ragline.store import open_store

        try:
            open_store(settings)
            load_answer_models(settings, with_generator=answer_mode(settings) != "extractive")
        except Exception:  # noqa: BLE001 - reported by the flow, with its context
            return

    threading.Thread(target=warm, daemon=True, name="ragline-warm-up").start()


@contextmanager
def without_heartbeats():
    """Flow runs started inside send no heartbeats. A run's end joins Prefect's heartbeat thread,
    which sleeps in 1 s steps: up to 1 s added to every one-shot `ragline ask` (0.8 s profiled).
    Heartbeats let an automation mark a crashed run; an ask lasts seconds, an ingest keeps them."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def run_flow(flow_fn, status: str | None = None, **params):
    """Run a flow in this process; user-fixable errors become one line instead of a traceback."""
    from ragline.flows.common import PERMANENT_ERRORS
    from ragline.ingestion.plan import IngestError

    # The errors a retry cannot fix are the ones the user must: one list for both.
    user_errors = (*PERMANENT_ERRORS, IngestError)
    try:
        if status is None:
            return flow_fn(**params)
        with console.status(status):
            return flow_fn(**params)
    except user_errors as exc:
        fail(str(exc).strip("'\""))


def prepare_dataset_run(dataset_dir: str) -> RaglineSettings:
    """Settings and a Prefect API for a run over a BEIR dataset folder, or a one-line error."""
    from pathlib import Path

    from ragline.evaluation.metrics import DatasetError, beir_paths

    if not Path(dataset_dir).expanduser().is_dir():
        fail(f"{dataset_dir} is not a folder: pass a BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    try:
        beir_paths(dataset_dir)
    except DatasetError as exc:
        fail(str(exc))
    settings = load_settings()
    connect_prefect(settings)
    return settings
