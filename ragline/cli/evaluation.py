"""`ragline eval` and `ragline eval-answers`: measure retrieval and answers on a dataset.

ragline.cli.app registers these commands (`register`).
"""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from ragline.cli.common import console, fail, out, prepare_dataset_run, run_flow
from ragline.settings import RaglineSettings

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
MODES = ("dense", "sparse", "hybrid")


def eval_command(
    dataset_dir: str = typer.Argument(..., help="BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    mode: list[str] = typer.Option([], "--mode", help="dense, sparse or hybrid (repeatable; default: retrieval.mode)."),
    limit_queries: int | None = typer.Option(None, "--limit-queries", min=1, help="Use only the first N queries."),
    max_docs: int | None = typer.Option(
        None, "--max-docs", min=1, help="Use only the first N documents and their queries."
    ),
    baseline: bool = typer.Option(
        False, "--baseline", help="Also rank whole passages embedded directly (no chunking)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the metrics as JSON (last line: the first mode)."),
) -> None:
    """Ingest DATASET_DIR into a throwaway collection and report nDCG@10, Recall@10/100, MRR@10."""
    bad = [m for m in mode if m not in MODES]
    if bad:
        fail(f"unknown --mode {', '.join(bad)}: use {', '.join(MODES)}")
    settings = prepare_dataset_run(dataset_dir)
    from ragline.flows.evaluation import evaluate

    report = run_flow(
        evaluate,
        status="running evaluate (ingest, then queries)...",
        dataset_dir=dataset_dir,
        modes=mode or None,
        limit_queries=limit_queries,
        max_docs=max_docs,
        direct_baseline=baseline,
    )
    print_report(report, settings, console if json_output else out)
    if json_output:
        # Extra rows first: the last line is the summary of the requested (first) mode.
        lines = [summary_line(report, row) for row in report["results"]]
        sys.stdout.write("\n".join(lines[1:] + lines[:1]) + "\n")


def summary_line(report: dict, row: dict) -> str:
    summary = {name: round(row[name], 4) for name in METRICS}
    summary.update(
        queries=report["queries"], docs=report["docs"], retrieval=row["retrieval"], embedder=report["embedder"]
    )
    return json.dumps(summary)


def print_report(report: dict, settings: RaglineSettings, target: Console) -> None:
    table = Table(
        title=f"{report['dataset']}: {report['queries']} queries, {report['docs']} docs, {report['chunks']} chunks"
    )
    for column in ("retrieval", *METRICS, "seconds"):
        table.add_column(column, justify="left" if column == "retrieval" else "right")
    for row in report["results"]:
        table.add_row(row["retrieval"], *(f"{row[name]:.4f}" for name in METRICS), f"{row['seconds']:.1f}")
    r = settings.retrieval
    target.print(table)
    target.print(
        f"embedder {report['embedder']}; hybrid fusion {r.fusion} (rrf_k {r.rrf_k}, {r.candidates} candidates)"
    )


def eval_answers_command(
    corpus_dir: str = typer.Argument(..., help="BEIR dataset folder whose corpus.jsonl holds the passages."),
    qa_file: str | None = typer.Argument(
        None,
        help="QA set: JSONL {question, answers, gold} or SQuAD-format JSON (default: the bundled "
        "20-question sample for the SQuAD retrieval corpus).",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use only the first N questions."),
    max_docs: int | None = typer.Option(None, "--max-docs", min=1, help="Ingest only the first N passages."),
    json_output: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """Answer each question with the real query flow; score answers and citations."""
    prepare_dataset_run(corpus_dir)
    from ragline.flows.evaluation import evaluate_answers

    report = run_flow(
        evaluate_answers,
        status="running evaluate-answers (ingest, then answers)...",
        corpus_dir=corpus_dir,
        qa_file=qa_file,
        limit=limit,
        max_docs=max_docs,
    )
    if json_output:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    out.print(
        f"{report['questions']} questions: {report['answer_contains_reference']:.1%} of answers contain a "
        f"reference answer; {report['citations_include_gold']:.1%} cite the gold passage "
        f"(generator {report['generator']}, retrieval {report['retrieval']})."
    )


def register(app: typer.Typer) -> None:
    """Add `eval` and `eval-answers` to the CLI."""
    app.command("eval")(eval_command)
    app.command("eval-answers")(eval_answers_command)
