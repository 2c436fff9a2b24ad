"""`ragline models bench`: the model-type comparison table, measured on this machine."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from ragline.cli_eval import console, fail, out, prepare

DEFAULT_DATASET = "../shared/data/squad2-cs224n-test-retrieval"
MEASURED = ("load s", "throughput", "unit", "peak MB", "quality", "quality metric")


def bench_command(
    dataset_dir: str = typer.Option(DEFAULT_DATASET, "--dataset", help="BEIR folder for the quality column (SQuAD ids for generators)."),
    docs: int = typer.Option(60, "--docs", min=5, help="Passages to ingest for the embedder quality eval."),
    queries: int = typer.Option(200, "--queries", min=1, help="Queries for the embedder quality eval."),
    questions: int = typer.Option(20, "--questions", min=1, help="QA questions for the generator quality column."),
    skip_generators: bool = typer.Option(False, "--skip-generators", help="Measure embedders only."),
    json_output: bool = typer.Option(False, "--json", help="Print the rows as JSON (one list, last line)."),
) -> None:
    """Per embedding and generation backend: load time, throughput, peak memory and quality."""
    prepare(dataset_dir)
    from flows.bench import models_bench

    with console.status("measuring backends (one subprocess each, then a small eval)..."):
        try:
            rows = models_bench(dataset_dir, docs=docs, queries=queries, questions=questions,
                                generators_too=not skip_generators)
        except (ValueError, LookupError, FileNotFoundError) as exc:
            fail(str(exc))
    if json_output:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    print_rows(rows)


def print_rows(rows: list[dict]) -> None:
    table = Table(title="ragline models bench (measured on this machine)", show_lines=True)
    for column in ("kind", "backend", "model type", "strengths", "weaknesses", "best use", *MEASURED):
        table.add_column(column)
    for row in rows:
        measured = ["-" if row[c] is None else str(row[c]) for c in MEASURED]
        table.add_row(row["kind"], row["backend"], row["model type"], row["strengths"], row["weaknesses"],
                      row["best use"], *measured)
    out.print(table)
    for row in rows:
        if row["status"] != "measured":
            out.print(f"{row['kind']} {row['backend']}: {row['status']}")
