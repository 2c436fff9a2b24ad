"""Cancelling a run that executes in a thread of `ragline serve` (ragline/deployments/serve.py).

A worker cancels a run by killing its process; a thread cannot be killed. The serve runner sees
the run go Cancelling in the API and calls request_cancel(); the flow checks between batches and
at the start of each embed task (raise_if_cancelled), stops there, and its `with` blocks (the
ingest lock) unwind on the way out. What was committed stays committed; the rest keeps its
previous version (an ingest is crash-safe at every point), so the next run resumes.
"""

from __future__ import annotations

import threading

from prefect.context import FlowRunContext, TaskRunContext


class RunCancelledError(Exception):
    """The run was cancelled from the Prefect UI or API while it ran in a thread of `ragline serve`."""


_requested: set[str] = set()
_lock = threading.Lock()


def request_cancel(flow_run_id) -> None:
    with _lock:
        _requested.add(str(flow_run_id))


def clear_cancel(flow_run_id) -> bool:
    """Forget the request; True if one was made."""
    with _lock:
        requested = str(flow_run_id) in _requested
        _requested.discard(str(flow_run_id))
        return requested


def cancel_requested(flow_run_id) -> bool:
    with _lock:
        return str(flow_run_id) in _requested


def current_flow_run_id() -> str | None:
    """The flow run this code runs for, from a task run or a flow run context (None outside runs)."""
    task_context = TaskRunContext.get()
    if task_context is not None and task_context.task_run.flow_run_id:
        return str(task_context.task_run.flow_run_id)
    flow_context = FlowRunContext.get()
    return str(flow_context.flow_run.id) if flow_context and flow_context.flow_run else None


def raise_if_cancelled() -> None:
    run_id = current_flow_run_id()
    if run_id is not None and cancel_requested(run_id):
        raise RunCancelledError(
            f"flow run {run_id} was cancelled: documents committed before are kept, the others keep "
            "their previous version; re-run the ingest to resume"
        )
