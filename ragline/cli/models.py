"""`ragline models ...`: the hardware-aware recommendation and the model catalog."""

from __future__ import annotations

import json
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table

from ragline.cli.common import load_settings, out
from ragline.cli.model_bench import bench_command
from ragline.settings import RaglineSettings

models_app = typer.Typer(
    help="Model selection: what runs best on this hardware, and the catalog.", no_args_is_help=True
)
models_app.command("bench")(bench_command)
# Piped output (CI logs, tests) gets no 80-column wrap: model IDs are long.
wide = Console(width=None if out.is_terminal else 220, soft_wrap=True)


class Purpose(str, Enum):
    rag = "rag"
    chat = "chat"
    search = "search"
    completion = "completion"


class Priority(str, Enum):
    auto = "auto"
    accuracy = "accuracy"
    efficiency = "efficiency"
    offline = "offline"


def configured_backends(settings: RaglineSettings) -> dict:
    """What `auto` resolves to for the models the settings name: the specs ingest and ask build.

    `auto` decides on the machine as if idle (ragline.models.auto_backends.stable_decision), so the
    line it prints does not change with momentary free memory.
    """
    from ragline import backends

    specs = (
        ("embedding", settings.embedding, backends.embedder_spec(settings)),
        ("instruct", settings.generation, backends.generator_spec(settings)),
    )
    configured = {
        role: {"model": section.model, "setting": section.backend, "backend": spec.backend}
        for role, section, spec in specs
    }
    configured["instruct"]["n_gpu_layers"] = specs[1][2].n_gpu_layers  # "auto" decided (llama.cpp)
    return configured


@models_app.command("recommend")
def recommend_command(
    purpose: Purpose = typer.Option(
        Purpose.rag, help="rag: embedder + instruct model; chat: instruct; search: embedder; completion: base LLM."
    ),
    priority: Priority = typer.Option(None, help="accuracy | efficiency | offline (default: selection.priority)."),
    json_output: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Pick models for PURPOSE on this hardware (see [hardware] settings to describe another machine)."""
    from ragline.models.auto_backends import decision_from_settings

    settings = load_settings()
    decision = decision_from_settings(settings, purpose.value, priority.value if priority else None)
    configured = configured_backends(settings)
    if json_output:
        print(json.dumps({**decision.to_dict(), "configured": configured}, indent=2))
        return
    wide.print(decision.render(), highlight=False, markup=False)
    wide.print("\n[bold]Picks[/]")
    for pick in decision.picks:
        if pick.model:
            m = pick.model
            where = {"gpu": "on the GPU", "ram": "on the CPU", "unified": "on the Apple GPU"}.get(pick.pool, "remote")
            details = f"{m.format} {m.quantization}, {m.memory_gb:.1f} GB, backend {m.backend} {where}"
            line = f"  {pick.role:9} {m.model_ref}  ({details})"
        else:
            line = f"  {pick.role:9} none: {pick.reason}"
        wide.print(line, highlight=False, markup=False)
    for pool in decision.pools.values():
        line = f"  memory    {pool.name}: {pool.used_gb:.1f} GB of {pool.budget_gb:.1f} GB budget"
        wide.print(line, highlight=False, markup=False)
    wide.print("\n[bold]With your settings[/] (backend = auto uses this decision)")
    for role, row in configured.items():
        line = f"  {role:9} {row['model']} -> backend {row['backend']} (setting: {row['setting']})"
        if row["backend"] == "llama-cpp" and "n_gpu_layers" in row:
            line += f", n_gpu_layers {row['n_gpu_layers']}"
        wide.print(line, highlight=False, markup=False)


@models_app.command("list")
def list_command(json_output: bool = typer.Option(False, "--json", help="Print the catalog as JSON.")) -> None:
    """Print the model catalog (ragline/models/catalog.toml)."""
    from dataclasses import asdict

    from ragline.models.catalog import load_catalog

    catalog = load_catalog()
    if json_output:
        print(json.dumps([asdict(m) | {"backend": m.backend, "model_ref": m.model_ref} for m in catalog], indent=2))
        return
    table = Table(title="ragline model catalog")
    for column in ("key", "purpose", "format", "quant", "params", "memory", "context", "dims", "backend", "source"):
        table.add_column(column)
    for m in catalog:
        table.add_row(
            m.key,
            m.purpose,
            m.format,
            m.quantization,
            f"{m.params_b:g}B" if m.params_b else "-",
            f"{m.memory_gb:.1f} GB" if m.memory_gb else "-",
            str(m.context),
            str(m.dims or "-"),
            m.backend,
            m.model_ref,
        )
    wide.print(table)
