"""The low-latency query path: a background task served by a long-lived task worker.

A deployment run starts a fresh process (or waits for a poll) and loads the embedding and instruct
models again; a background task goes over the Prefect server's websocket to a task worker that
is already running with the models loaded, and returns in well under a second plus generation
time. Every query is still a Prefect object: the task run `ask-query` wraps a real `ask` flow run
(the same flow the deployment runs), so it shows in the UI with its answer artifact.

Callers: `answer_question.delay(question=...)` returns a future; `ask_via_worker()` waits for it.
The task worker runs inside `ragline serve` (deployments/serve.py), next to the served deployments.
"""

from __future__ import annotations

from prefect import task

from ragline.flows.query import ask

QUERY_TASK_NAME = "ask-query"


@task(name=QUERY_TASK_NAME, persist_result=True, log_prints=False)
def answer_question(
    question: str,
    k: int | None = None,
    sources: list[str] | None = None,
    file_types: list[str] | None = None,
    collection: str | None = None,
    strict: bool | None = None,
) -> dict:
    """Run the `ask` flow in the worker process (models and store stay open between queries);
    `strict` leaves unsupported sentences out, as the flow's parameter does."""
    return ask(question=question, k=k, sources=sources, file_types=file_types, collection=collection, strict=strict)


def ask_via_worker(timeout_s: float, **params) -> dict:
    """Hand a question to the running query worker and wait for its persisted answer."""
    future = answer_question.delay(**params)
    future.wait(timeout=timeout_s)
    if future.state is None or not future.state.is_final():
        raise TimeoutError(
            f"no query worker answered within {timeout_s:.0f} s: is `ragline serve` running against this Prefect API?"
        )
    return future.result(raise_on_failure=True)
