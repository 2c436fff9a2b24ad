"""The `ragline` command: ingest documents, ask questions, inspect settings."""

from __future__ import annotations

import json
import os
import sys

import typer

from ragline.cli.common import (
    connect_prefect,
    console,
    fail,
    load_settings,
    out,
    quiet_terminal_logs,
    run_flow,
    warm_answer_models,
    without_heartbeats,
)
from ragline.cli.deploy import deploy, serve
from ragline.cli.evaluation import register as register_evaluation_commands
from ragline.cli.mcp import mcp
from ragline.cli.models import models_app

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
quiet_terminal_logs()  # run logs still reach the Prefect API at INFO

app = typer.Typer(help="ragline: Prefect-orchestrated RAG over your documents.", no_args_is_help=True)
server_app = typer.Typer(help="The local Prefect server ragline starts when no PREFECT_API_URL is set.")
app.add_typer(server_app, name="server")
app.add_typer(models_app, name="models")
register_evaluation_commands(app)
app.command()(deploy)
app.command()(serve)
app.command()(mcp)


@app.command()
def ingest(
    path: str = typer.Argument(..., help="Folder (or file) with documents to ingest."),
    collection: str | None = typer.Option(None, help="Collection name (default: store.collection)."),
    prune: bool = typer.Option(True, help="Delete chunks of files that left the folder."),
    json_output: bool = typer.Option(False, "--json", help="Print the ingestion summary as JSON."),
    reembed: bool = typer.Option(
        False, "--reembed", help="Embed every file again; rebuilds a collection made with another embedding model."
    ),
    allow_mass_delete: bool = typer.Option(
        False,
        "--allow-mass-delete",
        help="Allow deleting more than ingest.max_delete_fraction of the documents, or pruning an empty folder.",
    ),
) -> None:
    """Parse, chunk, embed and store the documents under PATH (unchanged files are skipped)."""
    settings = load_settings()
    check_ingest_arguments(settings, path, collection, allow_mass_delete)
    from ragline.cli.deploy import route_ingest, served_elsewhere
    from ragline.ingestion import preview
    from ragline.ingestion.discovery import display_path

    path = display_path(path)  # flow parameters are JSON: the flow maps a `\xNN` form back to the bytes
    # A run that would change nothing is answered here, without Prefect (ragline/ingestion/preview.py);
    # for one that parses, the parsers and the model start while Prefect imports.
    planned = preview.IngestPreview()
    if not served_elsewhere(settings):
        planned = preview.preview_ingest(settings, path, collection, prune, reembed, allow_mass_delete)
    summary = planned.summary
    if summary is None:
        if planned.file_types:
            preview.start_parsers_and_embedder(settings, planned.file_types)
        connect_prefect(settings)
        # None unless `ragline serve` owns the store
        routed = route_ingest(settings, path, collection, prune, reembed, allow_mass_delete)
        summary = (
            routed
            if routed is not None
            else run_ingest_with_progress_bar(path, collection, prune, reembed, allow_mass_delete)
        )
    if json_output:
        out.print_json(json.dumps(summary))
    else:
        print_ingest_summary(summary)


def check_ingest_arguments(settings, path: str, collection: str | None, allow_mass_delete: bool) -> None:
    """Fail with a one-line message before any work starts when the arguments cannot be right."""
    from ragline.ingestion.discovery import display_path, has_candidates
    from ragline.store import check_collection_name, check_store_settings

    try:
        check_store_settings(settings)
        check_collection_name(collection or settings.store.collection)
        found = has_candidates(path, settings.ingest.include, settings.ingest.exclude)
    except ValueError as exc:  # DiscoveryError, a bad collection name or store setting
        fail(str(exc))
    if not found and not allow_mass_delete:
        fail(
            f"no documents found under {display_path(path)} (ingest.include / ingest.exclude filter them all "
            "out); nothing was changed. To empty its documents from the collection, add --allow-mass-delete"
        )


def run_ingest_with_progress_bar(
    path: str, collection: str | None, prune: bool, reembed: bool, allow_mass_delete: bool
):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ragline import progress
    from ragline.flows.ingest import ingest as ingest_flow

    columns = (
        TextColumn("[bold]ingesting[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task_id = bar.add_task("ingest", total=None)
        progress.set_hook(lambda done, total: bar.update(task_id, completed=done, total=total))
        try:
            return run_flow(
                ingest_flow,
                path=path,
                collection=collection,
                prune=prune,
                reembed=reembed,
                allow_mass_delete=allow_mass_delete,
            )
        finally:
            progress.set_hook(None)


def shown(text: str) -> str:
    """Text from files (names, reasons) as Rich prints it literally: control characters escaped
    (a name may hold a newline), markup escaped (a name may read `[/etc/app].txt`)."""
    from rich.markup import escape

    return escape("".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text))


def print_ingest_summary(summary: dict) -> None:
    from rich.table import Table

    table = Table(title=f"ingest into {shown(summary['collection'])}")
    for column in ("file", "status", "chunks", "reason"):
        table.add_column(column)
    for row in summary["files"]:
        if row["status"] != "unchanged":
            table.add_row(shown(row["source"]), row["status"], str(row["chunks"]), shown(row["reason"] or ""))
    out.print(table)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary["counts"].items()))
    out.print(f"{counts}; {summary['chunks']} chunks written.")
    for note in summary.get("notes") or []:
        console.print(f"[yellow]note:[/] {shown(note)}")


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question to answer."),
    collection: str | None = typer.Option(None, help="Collection name (default: store.collection)."),
    k: int | None = typer.Option(None, "--k", help="How many chunks to retrieve."),
    source: list[str] = typer.Option([], help="Only search these source paths (repeatable)."),
    file_type: list[str] = typer.Option([], help="Only search these file types, e.g. pdf (repeatable)."),
    json_output: bool = typer.Option(False, "--json", help="Print the answer object as JSON."),
    remote: bool = typer.Option(False, "--remote", help="Run the `ask` deployment through the Prefect API."),
    strict: bool = typer.Option(False, "--strict", help="Leave out sentences the passages do not support."),
) -> None:
    """Answer QUESTION from the ingested documents, with citations."""
    from ragline.answering import check_query

    try:
        check_query(question, k)
    except ValueError as exc:
        fail(str(exc))
    settings = load_settings()
    from ragline.cli.deploy import route_ask, served_elsewhere

    routed = remote or served_elsewhere(settings)  # `ragline serve` owns the store: its query worker answers
    if not routed:
        warm_answer_models(settings)  # in the background, while Prefect and the flow import
    connect_prefect(settings)
    from ragline.cli.answer_view import print_answer, streamed_tokens
    from ragline.flows.query import ask as ask_flow

    params = dict(question=question, k=k, sources=source or None, file_types=file_type or None, collection=collection)
    with console.status("retrieving and generating...") as status, streamed_tokens(status, not json_output):
        if routed:
            answer = route_ask(settings, params, via_deployment=remote)
        else:
            with without_heartbeats():
                answer = run_flow(ask_flow, **params)
    if strict or settings.answer.strict:  # applied here too: a served worker answers with its own settings
        answer = strict_answer(answer)
    if json_output:
        sys.stdout.write(json.dumps(answer) + "\n")
        return
    print_answer(answer)


def strict_answer(answer: dict) -> dict:
    from ragline.grounding import without_unsupported
    from ragline.records import Answer

    return without_unsupported(Answer.model_validate(answer)).model_dump()


@app.command()
def config() -> None:
    """Print the effective settings (profile, env vars, .env), secrets masked."""
    from ragline.settings import masked_settings, selected_profile

    settings = load_settings()
    out.print(f"# profile: {selected_profile()}")
    out.print_json(json.dumps(masked_settings(settings)))


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server ragline started."""
    from ragline.deployments.local_server import stop_local_server

    stopped = stop_local_server(load_settings())
    out.print("stopped" if stopped else "no local Prefect server was started by ragline")


@server_app.command("start")
def server_start() -> None:
    """Start (or find) the local Prefect server and print its URL."""
    api_url = connect_prefect(load_settings())
    out.print(f"Prefect API: {api_url}\nPrefect UI:  {api_url.removesuffix('/api')}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
