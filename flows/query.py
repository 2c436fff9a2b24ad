"""Query flow: embed the question, retrieve, answer (extractive or grounded generation), checked and cited."""

from __future__ import annotations

import time

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from ragline.answering import PassageCount, Question
from ragline.flows.common import artifact_key, ask_run_name, with_retries
from ragline.grounding import marked_sentences
from ragline.records import Answer
from ragline.settings import get_settings
from ragline.store import SearchFilter
from ragline.tasks import query as t


# persist_result: the answer is what a caller of a served or deployed run reads back (README,
# "Results and their retention"); the tasks persist nothing.
@flow(name="ask", flow_run_name=ask_run_name, persist_result=True)
def ask(
    question: Question,
    k: PassageCount | None = None,
    sources: list[str] | None = None,
    file_types: list[str] | None = None,
    collection: str | None = None,
    strict: bool | None = None,
) -> dict:
    """Answer `question` from `collection`; returns the checked Answer as a dict ("answer",
    "citations", "timings", "mode", "sentences" with "supported", "context", "invalid_citations").

    Args:
        question: The question to answer from the ingested documents.
        k: How many passages to retrieve; empty for the `retrieval.k` setting.
        sources: Only search these source paths, as the ingest report lists them.
        file_types: Only search these file types, e.g. pdf or md.
        collection: Collection to search; empty for the `store.collection` setting.
        strict: Leave sentences the passages do not support out of the answer; empty for `answer.strict`.
    """
    settings = get_settings()
    if strict is not None:
        settings = settings.model_copy(update={"answer": settings.answer.model_copy(update={"strict": strict})})
    collection = collection or settings.store.collection
    filters = SearchFilter(tuple(sources or ()), tuple(f.lower().lstrip(".") for f in file_types or ()))
    started = time.perf_counter()
    k = settings.retrieval.k if k is None else k
    hits = with_retries(t.retrieve, settings)(question, k, filters, settings, collection)
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
    """The answer with each unsupported sentence marked, its citations, then the uncited context."""
    lines = [f"## {question}", "", render_sentences(answer), ""]
    if answer.invalid_citations:
        lines += [f"_Removed citations of passages that do not exist: {answer.invalid_citations}_", ""]
    for title, passages in (("Citations", answer.citations), ("Context (retrieved, not cited)", answer.context)):
        if passages:
            lines += [f"### {title}", ""]
        for c in passages:
            snippet = " ".join(c.text.split())[:300]
            lines.append(f"- [{c.n}] **{c.label}** (score {c.score:.3f}): {snippet}")
    return "\n".join(lines)


def render_sentences(answer: Answer) -> str:
    unsupported = "**⚠ {}** _(unsupported: no retrieved passage backs it)_"
    return " ".join(text if supported else unsupported.format(text) for text, supported in marked_sentences(answer))


def publish_answer(question: str, answer: Answer, collection: str) -> None:
    create_markdown_artifact(
        key=artifact_key("answer", collection),
        markdown=render_markdown(question, answer),
        description=f"Answer to: {question[:200]}",
    )
