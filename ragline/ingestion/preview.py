"""Answer an ingest run that would change nothing without a flow run (no Prefect import).

Re-running `ragline ingest` on an unchanged folder is the run users make most, and most of its
cost was fixed: importing Prefect (~2 s) and a flow run with its API round trips (~1.8 s), only to
report "unchanged". The CLI calls `preview_ingest` first: it loads the sync state, discovers
and plans exactly as the ingest flow does (flows/ingest.py, through the same library functions),
and gives the flow's summary only when the run would write nothing at all: no file to
(re)ingest, none to delete, no manifest record to refresh, no rebuild in progress, no staging
left by a killed run, no listing error and no note. In every other case the CLI runs the flow as
before, so anything the flow would do, log or warn about still happens in a flow run; when files
are to be parsed, it first starts the parser processes and the model load for their types
(`start_parsers_and_embedder`), which then overlap the Prefect import. The preview holds the
collection's ingest lock while it reads, without waiting: a busy lock means another run is
writing, and the flow (which waits for it) answers instead.

This module must not import Prefect (tests/test_small_runs.py checks it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ragline import backends
from ragline.ingestion import batches, sync
from ragline.ingestion import plan as sync_plan
from ragline.ingestion.locking import ingest_lock_if_free
from ragline.settings import RaglineSettings
from ragline.store import open_store
from ragline.store.manifest import staging_name


@dataclass
class IngestPreview:
    """What a run would do, as far as the CLI needs it: its summary when it changes nothing
    (else None), and the types of the files it would parse (empty when not known)."""

    summary: dict | None = None
    file_types: set[str] = field(default_factory=set)


def preview_ingest(
    settings: RaglineSettings,
    path: str,
    collection: str | None = None,
    prune: bool = True,
    reembed: bool = False,
    allow_mass_delete: bool = False,
) -> IngestPreview:
    """Plan the run as the flow would, changing nothing (see the module docstring).

    Errors are not reported here: whatever fails (a collection built with another model, an
    unreadable folder) gives an empty preview, and the flow run reports it as it always has.
    """
    collection = collection or settings.store.collection
    if reembed:
        return IngestPreview()
    with ingest_lock_if_free(settings.data_dir, collection) as locked:
        if not locked:
            return IngestPreview()
        try:
            return _preview(settings, path, collection, prune, allow_mass_delete)
        except Exception:  # noqa: BLE001 - the flow run reports any error with its full context
            return IngestPreview()


def _preview(
    settings: RaglineSettings, path: str, collection: str, prune: bool, allow_mass_delete: bool
) -> IngestPreview:
    store = open_store(settings)
    info = store.collection_info(collection)
    embedder_name = backends.embedder_spec(settings).name
    # A new collection (the flow's discovery hashes every file: not twice), another model's
    # collection or a rebuild, and staging left by a killed run: all of them are for the flow.
    if info is None or info.embedder != embedder_name or store.collection_info(staging_name(collection)):
        return IngestPreview()
    state = sync.load_sync_state(settings, collection, path, False)
    if state.target != collection:
        return IngestPreview()
    discovery = sync.discover_files(state.scope, settings, sync_plan.known_hashes(state))
    plan = sync.plan_sync(discovery, state, prune, False, allow_mass_delete, settings)
    file_types = {f.file_type for f in plan.to_ingest}
    if file_types or plan.removed or plan.refreshed or plan.kept or plan.notes:
        return IngestPreview(file_types=file_types)
    if discovery.listing_errors:
        return IngestPreview()
    reports = sync.planned_reports(discovery, plan)
    summary = {**sync.summarize(collection, state.root, reports), "parsed": 0, "embedded": 0, "notes": []}
    return IngestPreview(summary=summary)


def start_parsers_and_embedder(settings: RaglineSettings, file_types: set[str]) -> None:
    """Start the parser processes (warming the partitioners of `file_types` only) and load the
    embedder in a background thread, so that both overlap the Prefect import that comes before
    the flow run. The flow's tasks find the same per-process pool and embedder, ready or loading;
    whatever fails here fails again there, where it is reported."""
    from ragline.embedders import get_embedder
    from ragline.parsing.pool import expect_file_types, get_parser_pool

    expect_file_types(file_types)

    def start_parsers() -> None:  # waits on the forkserver's imports: a process, another core
        get_parser_pool(batches.parse_options(settings), settings.ingest.parse_workers).warm()

    def load_embedder() -> None:
        get_embedder(backends.embedder_spec(settings)).warm_up()

    for step in (start_parsers, load_embedder):
        threading.Thread(target=_quietly, args=(step,), daemon=True, name=f"ragline-{step.__name__}").start()


def _quietly(step) -> None:
    try:
        step()
    except Exception:  # noqa: BLE001 - the flow run does the same step and reports its error
        return
