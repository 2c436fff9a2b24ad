"""`ragline models bench`: the model-type comparison table, measured on this machine."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from ragline.cli.common import console, fail, out, prepare_dataset_run

DEFAULT_DATASET = "../shared/data/squad2-cs224n-test-retrieval"
MEASURED = ("load s", "throughput", "unit", "peak MB", "quality", "quality metric")


def bench_command(
    dataset_dir: str = typer.Option(
        DEFAULT_DATASET, "--dataset", help="BEIR folder for the quality column (SQuAD ids for generators)."
    ),
    docs: int = typer.Option(60, "--docs", min=5, help="Passages to ingest for the embedder quality eval."),
    queries: int = typer.Option(200, "--queries", min=1, help="Queries for the embedder quality eval."),
    questions: int = typer.Option(20, "--questions", min=1, help="QA questions for the generator quality column."),
    budget: float = typer.Option(
        120.0, "--budget", min=5, help="Seconds per measurement; slower backends are measured on what fits."
    ),
    embedder_names: str = typer.Option(
        "", "--embedders", help="Comma-separated embedding backends (default: all registered)."
    ),
    generator_names: str = typer.Option(
        "", "--generators", help="Comma-separated generation backends (default: all registered)."
    ),
    skip_generators: bool = typer.Option(False, "--skip-generators", help="Measure embedders only."),
    json_output: bool = typer.Option(False, "--json", help="Print the rows as JSON (one list, last line)."),
) -> None:
    """Per embedding and generation backend: load time, throughput, peak memory and quality."""
    prepare_dataset_run(dataset_dir)
    from ragline import embedders, generators
    from ragline.flows.model_bench import check_known, models_bench

    try:
        check_known(names(embedder_names), embedders.available_backends(), "embedding")
        check_known(names(generator_names), generators.available_backends(), "generation")
    except ValueError as exc:
        fail(str(exc))

    with console.status("measuring backends (one subprocess each, then a small eval)..."):
        try:
            rows = models_bench(
                dataset_dir,
                docs=docs,
                queries=queries,
                questions=questions,
                generators_too=not skip_generators,
                budget_s=budget,
                embedder_backends=names(embedder_names),
                generator_backends=names(generator_names),
            )
        except (ValueError, LookupError, FileNotFoundError) as exc:
            fail(str(exc))
    if json_output:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    print_rows(rows)


def names(comma_separated: str) -> list[str] | None:
    return [name.strip() for name in comma_separated.split(",") if name.strip()] or None


def print_rows(rows: list[dict]) -> None:
    """One section per model type (the seed's four), its sample models, then its measured backends."""
    from ragline.models.backend_table import MODEL_TYPES
    from ragline.models.catalog import sample_models

    table = Table(title="ragline models bench (measured on this machine)", show_lines=True)
    for column in ("model type", "sample models", "kind", "backend", "runtime", "strengths", "weaknesses"):
        table.add_column(column)
    for column in ("best use", *MEASURED):
        table.add_column(column)
    for model_type in MODEL_TYPES:
        members = [row for row in rows if row.get("type") == model_type.name]
        if not members and model_type.purpose != "completion":
            continue
        samples = ", ".join(sample_models(model_type.purpose, quantized=True if not model_type.purpose else None))
        table.add_section()
        table.add_row(f"[bold]{model_type.name}[/]", samples, "", "", model_type.uses)
        if model_type.purpose == "completion":
            # Base models run on the instruct backends: their speed and memory are those rows'.
            table.add_row("", "", "generator", "llama-cpp, transformers", "measured as chat / QA above")
        for row in members:
            measured = ["-" if row[c] is None else str(row[c]) for c in MEASURED]
            table.add_row(
                "",
                row.get("sample models", "-"),
                row["kind"],
                row["backend"],
                row["model type"],
                row["strengths"],
                row["weaknesses"],
                row["best use"],
                *measured,
            )
    # Piped output (CI logs, BENCHMARKS.md) gets room for the columns instead of an 80-column squeeze.
    wide = Console(width=None if out.is_terminal else 260, soft_wrap=True)
    wide.print(table)
    for row in rows:
        if row["status"] != "measured":
            out.print(f"{row['kind']} {row['backend']}: {row['status']}")
