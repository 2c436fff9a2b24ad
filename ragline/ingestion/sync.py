"""The planning steps of an ingest run, with their settings applied: the ingest flow runs each as a
task (tasks/ingest.py), the CLI's preview of a run (ragline/ingestion/preview.py) calls them
directly, so both plan a run the same way. No Prefect here."""

from __future__ import annotations

from ragline import backends
from ragline.ingestion import batches
from ragline.ingestion import plan as sync_plan
from ragline.ingestion.discovery import Discovery, KnownHash, Scope, discover
from ragline.records import FileReport
from ragline.settings import RaglineSettings
from ragline.store import open_store


def load_sync_state(settings: RaglineSettings, collection: str, path: str, reembed: bool) -> sync_plan.SyncState:
    # The spec names the embedder without loading it: an unchanged folder never needs the model.
    name = backends.embedder_spec(settings).name
    signature = batches.parse_options(settings).signature()
    return sync_plan.load_state(open_store(settings), collection, path, name, reembed, signature)


def discover_files(scope: Scope, settings: RaglineSettings, known: dict[str, KnownHash] | None = None) -> Discovery:
    i = settings.ingest
    return discover(scope.path, i.include, i.exclude, i.max_file_mb, known, scope=scope)


def plan_sync(
    discovery: Discovery,
    state: sync_plan.SyncState,
    prune: bool,
    force: bool,
    allow_mass_delete: bool,
    settings: RaglineSettings,
) -> sync_plan.SyncPlan:
    fraction = settings.ingest.max_delete_fraction
    return sync_plan.plan_sync(discovery, state, prune, force, fraction, allow_mass_delete)


def planned_reports(discovery: Discovery, plan: sync_plan.SyncPlan) -> list[FileReport]:
    """The rows a run reports before parsing: discovery's skips, known failures, kept and unchanged files."""
    reports = list(discovery.reports) + plan.known_failures + plan.kept
    return reports + [FileReport(f.source, "unchanged") for f in plan.unchanged]


def summarize(collection: str, root: str, reports: list[FileReport]) -> dict:
    """The summary an ingest run returns: counts per status, chunks, one row per file."""
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.status] = counts.get(report.status, 0) + 1
    return {
        "collection": collection,
        "root": root,
        "counts": counts,
        "chunks": sum(r.chunks for r in reports),
        "files": [r.__dict__ for r in sorted(reports, key=lambda r: r.source)],
    }
