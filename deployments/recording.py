"""Every request the chat API or MCP answers becomes a Prefect flow run, recorded off the response path.

The answer is computed in the serving process first (warm models, no Prefect round trips), then a
small `serve-request` flow is run in a background thread with the request's question, timings and
answer: a completed flow run with the same markdown artifact `ragline ask` publishes, so the UI
shows API traffic next to CLI and deployment runs. Running the flow takes a few hundred
milliseconds of API calls (create run, states, artifact); doing it in the request would add that
to every response (benchmarks/chat_load.py measures it: `recorder` in its report).

One thread records in arrival order; the backlog is bounded, and when Prefect is down records are
dropped with a warning instead of holding answers back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from prefect import flow, tags
from prefect.artifacts import create_markdown_artifact

from ragline.flows.common import artifact_key
from ragline.flows.query import publish_answer
from ragline.records import Answer, citation_label

RECORD_FLOW_NAME = "serve-request"
BACKLOG = 1000
logger = logging.getLogger("ragline.serve")


@dataclass
class RequestRecord:
    kind: str  # "chat", "mcp-ask", "mcp-search"
    request_id: str
    question: str  # the question as answered (a follow-up made standalone)
    collection: str
    timings: dict[str, float]
    answer: Answer | None = None  # for chat and ask
    passages: list[dict] = field(default_factory=list)  # for search


def render_passages(query: str, passages: list[dict]) -> str:
    lines = [f"## Search: {query}", ""]
    for p in passages:
        where = citation_label(p["source"], p.get("page"))
        lines.append(f"{p['n']}. **{where}** (score {p['score']:.3f}): {' '.join(p['text'].split())[:300]}")
    return "\n".join(lines)


@flow(name=RECORD_FLOW_NAME, flow_run_name="{kind}-{request_id}", persist_result=False, log_prints=False)
def record_request(
    kind: str,
    request_id: str,
    question: str,
    collection: str,
    timings: dict[str, float],
    answer: Answer | None = None,
    passages: list[dict] | None = None,
) -> dict:
    """One request answered by `ragline serve`'s HTTP front; the answer (or passages) is the artifact."""
    if answer is not None:
        publish_answer(question, answer, collection)
    else:
        create_markdown_artifact(
            key=artifact_key("search", collection),
            markdown=render_passages(question, passages or []),
            description=f"Search: {question[:200]}",
        )
    return {"request_id": request_id, "timings": timings}


class Recorder:
    """A background thread that runs `record_request` for each submitted record, in order."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.durations: list[float] = []  # seconds each recording took: what a request would pay inline
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[RequestRecord | None] = queue.Queue(maxsize=BACKLOG)
        self._thread = threading.Thread(target=self._run, name="prefect-recorder", daemon=True)
        if enabled:
            self._thread.start()

    def submit(self, record: RequestRecord) -> None:
        if not self.enabled:
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            logger.warning(
                "the Prefect recording backlog is full (is the API reachable?): request %s not recorded",
                record.request_id,
            )

    def _run(self) -> None:
        while (record := self._queue.get()) is not None:
            started = time.perf_counter()
            try:
                with tags("ragline", f"api:{record.kind}"):
                    record_request(
                        kind=record.kind,
                        request_id=record.request_id,
                        question=record.question,
                        collection=record.collection,
                        timings=record.timings,
                        answer=record.answer,
                        passages=record.passages or None,
                    )
                self.durations.append(time.perf_counter() - started)
            except Exception as exc:  # the answer was already sent; a missing record must not stop the rest
                self.failed += 1
                logger.warning("could not record request %s in Prefect: %s", record.request_id, exc)

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout_s: float = 30.0) -> None:
        """Record what is queued (up to `timeout_s`), then stop the thread."""
        if not self.enabled or not self._thread.is_alive():
            return
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.warning("%d request records were not written to Prefect before shutdown", self.pending())

    def stats(self) -> dict:
        durations = sorted(self.durations)
        pick = lambda q: round(durations[min(len(durations) - 1, int(q * len(durations)))], 3) if durations else None  # noqa: E731
        return {
            "recorded": len(durations),
            "pending": self.pending(),
            "failed": self.failed,
            "dropped": self.dropped,
            "p50_s": pick(0.5),
            "p95_s": pick(0.95),
        }
