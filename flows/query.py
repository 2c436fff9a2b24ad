"""Query flow: embed the question, retrieve, generate an answer with numbered citations."""

from __future__ import annotations

import time

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from ragline.flows.common import artifact_key, with_retries
from ragline.records import Answer
from ragline.settings import get_settings
from ragline.store import SearchFilter
from ragline.tasks import query as t


@flow(name="ask")
def ask(
    question: str,
    k: int | None = None,
    sources: list[str] | None = None,
    file_types: list[str] | None = None,
    collection: str | None = None,
) -> dict:
    """Answer `question` from `collection`; returns {"answer", "citations", "timings"}."""
    if not question or not question.strip():
        raise ValueError('the question is empty: ask something, e.g. ragline ask "What is ragline?"')
    settings = get_settings()
    collection = collection or settings.store.collection
    filters = SearchFilter(tuple(sources or ()), tuple(f.lower().lstrip(".") for f in file_types or ()))
    started = time.perf_counter()
    hits = with_retries(t.retrieve, settings)(question, k or settings.retrieval.k, filters, settings, collection)
    retrieved = time.perf_counter()
    answer = with_retries(t.generate_answer, settings)(question, hits, settings)
    answer.timings = {
        "retrieve_s": round(retrieved - started, 3),
        **answer.timings,
        "total_s": round(time.perf_counter() - started, 3),
    }
    publish_answer(question, answer, collection)
    return answer.model_dump()


def render_markdown(question: str, answer: Answer) -> str:
    lines = [f"## {question}", "", answer.answer, "", "### Citations", ""]
    for c in answer.citations:
        where = c.source + (f", page {c.page}" if c.page else "")
        snippet = " ".join(c.text.split())[:300]
        lines.append(f"{c.n}. **{where}** (score {c.score:.3f}): {snippet}")
    return "\n".join(lines)


def publish_answer(question: str, answer: Answer, collection: str) -> None:
    create_markdown_artifact(
        key=artifact_key("answer", collection),
        markdown=render_markdown(question, answer),
        description=f"Answer to: {question[:200]}",
    )
