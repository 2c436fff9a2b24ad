"""`ragline models bench`: every embedding and generation backend importable here, measured.

Load time, throughput and peak memory come from a subprocess per backend (ragline.evaluation.model_bench);
embedder quality is the evaluate flow (real ingest + retrieval) on a small sample of the dataset,
run with that backend selected; generator quality is answer-contains-reference on a QA sample.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from prefect import flow
from prefect.artifacts import create_table_artifact

from ragline import embedders, generators
from ragline.evaluation import model_bench
from ragline.flows.common import artifact_key
from ragline.flows.evaluation import evaluate
from ragline.models import backend_table
from ragline.models.catalog import sample_models
from ragline.tasks import model_bench as t
from ragline.tasks.artifacts import RunProgress

TYPE_ORDER = [model_type.name for model_type in backend_table.MODEL_TYPES]


@contextmanager
def selected_setting(variable: str, value: str):
    """Select a setting the way users do (an env var), for flows that read settings themselves."""
    previous = os.environ.get(variable)
    os.environ[variable] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous


@flow(name="models-bench", log_prints=False)
def models_bench(
    dataset_dir: str,
    docs: int = 60,
    queries: int = 200,
    questions: int = 20,
    generators_too: bool = True,
    budget_s: float = 120.0,
    embedder_backends: list[str] | None = None,
    generator_backends: list[str] | None = None,
) -> list[dict]:
    """One row per backend: the model-type comparison with measured columns.

    `budget_s` bounds each measurement, so a backend that is unusably slow here (MLX on x86 runs
    on reference BLAS) costs minutes, not hours: its throughput comes from what fit in the budget,
    and its quality eval is skipped when the measured speed says it would not fit either.
    """
    arguments = [
        "--dataset",
        dataset_dir,
        "--docs",
        str(docs),
        "--questions",
        str(questions),
        "--budget-s",
        str(budget_s),
    ]
    check_known(embedder_backends, embedders.available_backends(), "embedding")
    check_known(generator_backends, generators.available_backends(), "generation")
    rows = []
    embedder_list = embedder_backends or embedders.available_backends()
    generator_list = (generator_backends or generators.available_backends()) if generators_too else []
    bar = RunProgress(artifact_key("models-bench", "progress"), "backends", "Models bench")
    bar.report(0, len(embedder_list) + len(generator_list))
    for backend in embedder_list:
        result = t.measure_backend("embedder", backend, arguments)
        if result.status == "measured":
            add_embedder_quality(result, backend, dataset_dir, docs, queries, budget_s)
        rows.append(table_row(result))
        bar.report(len(rows), len(embedder_list) + len(generator_list))
    for backend in generator_list:
        rows.append(table_row(t.measure_backend("generator", backend, arguments)))
        bar.report(len(rows), len(embedder_list) + len(generator_list))
    rows.sort(key=lambda row: TYPE_ORDER.index(row["type"]))  # grouped by model type; stable within
    create_table_artifact(
        key=artifact_key("models-bench", "table"),
        table=rows,
        description=f"Backends measured on this machine; quality on {os.path.basename(dataset_dir.rstrip('/'))}.",
    )
    return rows


def check_known(requested: list[str] | None, known: list[str], kind: str) -> None:
    unknown = sorted(set(requested or []) - set(known))
    if unknown:
        raise ValueError(f"unknown {kind} backend(s) {', '.join(unknown)}; choose from: {', '.join(known)}")


def add_embedder_quality(
    result: model_bench.WorkerResult, backend: str, dataset_dir: str, docs: int, queries: int, budget_s: float
) -> None:
    """nDCG@10 of the real ingest + retrieval path with this backend selected, when it fits the budget."""
    expected_s = (docs + queries) / max(result.metrics["throughput"], 1e-9)
    if expected_s > budget_s:
        result.reason = (
            f"quality not measured: embedding {docs + queries} texts would take ~{expected_s / 60:.0f} min "
            f"at {result.metrics['throughput']} passages/s (raise --budget to measure it)"
        )
        return
    with (
        selected_setting("RAGLINE_EMBEDDING__BACKEND", backend),
        selected_setting("RAGLINE_EMBEDDING__MODEL", result.metrics["model_ref"]),
    ):
        report = evaluate(dataset_dir, modes=["dense"], max_docs=docs, limit_queries=queries)
    result.metrics["ndcg@10"] = round(report["results"][0]["ndcg@10"], 4)


def table_row(result: model_bench.WorkerResult) -> dict:
    model_type, strengths, weaknesses, best_use = model_bench.profile(result.kind, result.backend)
    m = result.metrics
    quality = m.get("ndcg@10", m.get("answer_contains_reference"))
    return {
        # The seed's model type (the group) and catalog models of it this backend runs.
        "type": backend_table.model_type(model_bench.ROLES[result.kind], result.backend).name,
        "sample models": ", ".join(sample_models(backend=result.backend)) or "-",
        "kind": result.kind,
        "backend": result.backend,
        "model type": model_type,
        "strengths": strengths,
        "weaknesses": weaknesses,
        "best use": best_use,
        "status": result.status if not result.reason else f"{result.status}: {result.reason}",
        "model": m.get("model", ""),
        "load s": m.get("load_s"),
        "throughput": m.get("throughput"),
        "unit": m.get("unit", ""),
        "peak MB": m.get("peak_rss_mb"),
        "quality": quality,
        "quality metric": "nDCG@10" if result.kind == "embedder" else "answer contains reference",
    }
