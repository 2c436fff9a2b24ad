"""Evaluation flows: retrieval metrics on a BEIR dataset, and the end-to-end answer check.

Both ingest the dataset's corpus through the real ingest flow into a throwaway collection
(dropped afterwards), so what is measured is exactly what `ragline ingest` + `ragline ask` do.
"""

from __future__ import annotations

import tempfile
import time
import uuid

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from ragline.evaluation.metrics import CUTOFFS, load_qa, score_answers
from ragline.evaluation.qa_sample import SQUAD_QA_SAMPLE
from ragline.flows.common import artifact_key, with_retries
from ragline.flows.ingest import ingest
from ragline.flows.query import ask
from ragline.ingestion.batches import batched
from ragline.settings import RaglineSettings, get_settings
from ragline.tasks import evaluation as t
from ragline.tasks.artifacts import RunProgress
from ragline.timing import seconds_since

# Queries per retrieval task: ~6,000 queries make ~24 tasks, not 6,000.
QUERIES_PER_TASK = 256


@flow(name="evaluate", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False)
def evaluate(
    dataset_dir: str,
    modes: list[str] | None = None,
    limit_queries: int | None = None,
    max_docs: int | None = None,
    direct_baseline: bool = False,
    include_runs: bool = False,
) -> dict:
    """Retrieval metrics for each mode (default: retrieval.mode) on the BEIR dataset in `dataset_dir`.

    `max_docs` keeps the first documents and only the queries judged on them (quick checks);
    `direct_baseline` adds a row for whole passages embedded directly, without chunking or store;
    `include_runs` adds each mode's ranking ({query id: [doc ids]}) to its row.
    """
    settings = get_settings()
    modes = modes or [settings.retrieval.mode]
    dataset = t.load_dataset(dataset_dir, limit_queries, max_docs)
    collection = f"eval-{uuid.uuid4().hex[:12]}"
    get_run_logger().info(
        "%s: %d docs, %d queries, modes %s", dataset.name, len(dataset.corpus), len(dataset.queries), modes
    )
    with tempfile.TemporaryDirectory(prefix="ragline-eval-") as folder:
        source_to_doc = t.write_corpus(dataset, folder)
        try:
            summary = ingest(path=folder, collection=collection, prune=True)
            embedder = t.embedder_name(settings)
            results = [score_mode(dataset, settings, collection, mode, source_to_doc) for mode in modes]
        finally:
            with_retries(t.drop_collection, settings)(settings, collection)
    if direct_baseline:
        started = time.perf_counter()
        run = t.direct_dense_baseline(dataset, settings)
        results.append(
            {
                "retrieval": "dense-direct",
                **t.score_run(run, dataset.qrels),
                "seconds": seconds_since(started),
                "run": run,
            }
        )
    report = {
        "dataset": dataset.name,
        "queries": len(dataset.queries),
        "docs": len(dataset.corpus),
        "chunks": summary["chunks"],
        "embedder": embedder,
        "results": results,
    }
    publish_results(report)
    if not include_runs:
        for row in results:
            row.pop("run")
    return report


def score_mode(dataset, settings: RaglineSettings, collection: str, mode: str, source_to_doc: dict[str, str]) -> dict:
    started = time.perf_counter()
    retrieve = with_retries(t.retrieve_batch, settings)
    queries = list(dataset.queries.items())
    futures = [
        retrieve.submit(batch, settings, collection, mode, source_to_doc)
        for batch in batched(queries, QUERIES_PER_TASK)
    ]
    run: dict[str, list[str]] = {}
    bar = RunProgress(artifact_key("eval-progress", mode), "query batches", f"Retrieval eval ({mode})")
    for done, future in enumerate(futures, start=1):
        run.update(future.result())
        bar.report(done, len(futures))
    metrics = t.score_run(run, dataset.qrels)
    label = mode + ("+rerank" if settings.retrieval.rerank_model else "")
    return {"retrieval": label, **metrics, "seconds": seconds_since(started), "run": run}


def publish_results(report: dict) -> None:
    rows = [
        {"retrieval": r["retrieval"], **{name: round(r[name], 4) for name in CUTOFFS}, "seconds": r["seconds"]}
        for r in report["results"]
    ]
    create_table_artifact(
        key=artifact_key("eval", report["dataset"]),
        table=rows,
        description=(
            f"Retrieval on {report['dataset']}: {report['queries']} queries, {report['docs']} docs "
            f"({report['chunks']} chunks), embedder {report['embedder']}."
        ),
    )


@flow(name="evaluate-answers", log_prints=False)
def evaluate_answers(
    corpus_dir: str, qa_file: str | None = None, limit: int | None = None, max_docs: int | None = None
) -> dict:
    """Ingest the BEIR corpus in `corpus_dir`, answer each question of `qa_file` with the real
    query flow, and score: does the answer contain a reference answer, do its citations include
    the gold passage. Without `qa_file`, the bundled SQuAD sample (ragline/evaluation/qa_sample.py)."""
    settings = get_settings()
    items = load_qa(qa_file) if qa_file else list(SQUAD_QA_SAMPLE)
    items = items[:limit] if limit else items
    dataset = t.load_dataset(corpus_dir, None, max_docs)
    if max_docs or not qa_file:
        items = [item for item in items if set(item.gold) & set(dataset.corpus)]
    if not items:
        raise ValueError(
            f"no question in {qa_file or 'the bundled SQuAD sample'} has its gold passage in {corpus_dir}: "
            "check the ids"
        )
    collection = f"eval-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix="ragline-eval-") as folder:
        source_to_doc = t.write_corpus(dataset, folder)
        try:
            ingest(path=folder, collection=collection, prune=True)
            answers = [ask(question=item.question, collection=collection) for item in items]
        finally:
            with_retries(t.drop_collection, settings)(settings, collection)
    scores = score_answers(items, answers, source_to_doc)
    report = {
        "dataset": dataset.name,
        "retrieval": settings.retrieval.mode,
        **scores,
        "generator": settings.generation.model,
    }
    create_table_artifact(
        key=artifact_key("eval-answers", dataset.name),
        table=[
            {
                "question": i.question,
                "references": " | ".join(i.answers),
                "answer": a["answer"][:300],
                "cited": ", ".join(source_to_doc.get(c["source"], c["source"]) for c in a["citations"]),
            }
            for i, a in zip(items, answers, strict=True)
        ],
        description=(
            f"{scores['questions']} questions: {scores['answer_contains_reference']:.1%} of answers contain "
            f"a reference answer, {scores['citations_include_gold']:.1%} cite the gold passage."
        ),
    )
    return report
