"""Ingestion flow: lock -> read state -> discover -> plan -> parse -> embed+stage -> commit -> prune.

How the pieces make re-runs incremental and crash-safe is in ragline/ingestion/plan.py and
ragline/store/manifest.py; when to embed what has been parsed is ragline/ingestion/batches.py.
This module orders the tasks and reports.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from ragline import crashpoints
from ragline.flows.common import artifact_key, cancellable, ingest_run_name, with_retries
from ragline.ingestion import batches
from ragline.ingestion import plan as sync_plan
from ragline.ingestion.batches import batched
from ragline.ingestion.locking import ingest_lock
from ragline.ingestion.plan import IngestError
from ragline.ingestion.sync import planned_reports, summarize  # shared with the CLI's preview
from ragline.parsing.pool import expect_file_types
from ragline.records import FileReport
from ragline.settings import RaglineSettings, get_settings
from ragline.store import EmbedderMismatchError, check_collection_name
from ragline.tasks import ingest as t
from ragline.tasks.artifacts import RunProgress
from ragline.tasks.cancellation import RunCancelledError


# Two workers: parsing the next files overlaps with embedding the current chunks.
# persist_result: the summary (counts and one row per file, no chunk text) is what a caller of a
# served or deployed run reads back; the tasks persist nothing (tasks/ingest.py).
@flow(
    name="ingest",
    task_runner=ThreadPoolTaskRunner(max_workers=2),
    log_prints=False,
    flow_run_name=ingest_run_name,
    persist_result=True,
)
@cancellable
def ingest(
    path: str,
    collection: str | None = None,
    prune: bool = True,
    reembed: bool = False,
    allow_mass_delete: bool = False,
) -> dict:
    """Sync the documents under `path` into `collection`; returns a summary with a per-file report.

    Args:
        path: Folder (or single file) to sync, on the machine that runs the flow.
        collection: Collection to write; empty for the `store.collection` setting.
        prune: Delete the chunks of files that left the folder.
        reembed: Embed every file again (rebuilds a collection made with another embedding model).
        allow_mass_delete: Let this run delete more than ingest.max_delete_fraction of the
            documents it covers, or prune after an empty listing (see "What a run may delete").
    """
    settings = get_settings()
    collection = collection or settings.store.collection
    logger = get_run_logger()
    check_collection_name(collection)
    with ingest_lock(settings.data_dir, collection, settings.ingest.lock_timeout_s):
        state = with_retries(t.load_sync_state, settings)(settings, collection, path, reembed)
        root, target = state.root, state.target  # target: the collection, or its rebuild
        discovery = with_retries(t.discover_files, settings)(state.scope, settings, sync_plan.known_hashes(state))
        plan = t.plan_sync(discovery, state, prune, reembed and target == collection, allow_mass_delete, settings)
        logger.info(
            "%d files to ingest, %d unchanged, %d removed",
            len(plan.to_ingest),
            len(plan.unchanged),
            len(plan.removed),
        )
        reports = planned_reports(discovery, plan)
        if plan.refreshed:
            with_retries(t.refresh_manifest, settings)(settings, target, root, plan.refreshed)
        work = run_guarded(ingest_documents, plan, settings, target, reports)
        crashpoints.reached("finalize")
        run_guarded(with_retries(t.finalize_documents, settings), settings, target, root, plan.removed)
        if target != collection:
            complete = not discovery.listing_errors and bool(discovery.files or discovery.reports)
            plan.notes.append(t.finish_rebuild(settings, collection, target, complete, allow_mass_delete))
    reports += [FileReport(source, "deleted") for source in plan.removed]
    summary = {**summarize(collection, root, reports), **work, "notes": plan.notes}
    for note in plan.notes:
        logger.warning("%s", note)
    publish_report(collection, summary)
    return summary


def run_guarded(step, *args):
    """Run a step; an error left after its retries stops the run with what it means for the data."""
    try:
        return step(*args)
    except (EmbedderMismatchError, RunCancelledError):
        raise
    except Exception as exc:
        raise IngestError(
            f"ingest stopped: {type(exc).__name__}: {exc}. Documents committed before this error "
            "keep their chunks and the others keep their previous version; fix the cause "
            "(e.g. the vector store being unreachable) and re-run to resume."
        ) from exc


def ingest_documents(
    plan: sync_plan.SyncPlan, settings: RaglineSettings, collection: str, reports: list[FileReport]
) -> dict:
    """Parse file batches concurrently; embed chunks across batches into staging, then commit them.

    Chunks of several parsed batches are embedded together (batches.should_embed_now says when),
    so per-call overhead (a task run, a store flush, a commit) is paid per flush, not per file batch.
    """
    parse = with_retries(t.parse_files, settings)
    expect_file_types(f.file_type for f in plan.to_ingest)  # the parser processes warm only these
    model_loaded = with_retries(t.load_embedder, settings).submit(settings) if plan.to_ingest else None
    per_task = batches.parse_batch_size(len(plan.to_ingest), settings.ingest.files_per_batch)
    futures = [parse.submit(group, settings) for group in batched(plan.to_ingest, per_task)]
    files = {f.source: f for f in plan.to_ingest}
    waiting: list = []
    done = embedded = 0
    bar = RunProgress(artifact_key("ingest-progress", collection), "files", f"Ingest into {collection}")
    bar.report(0, len(plan.to_ingest))
    for i in range(len(futures)):
        waiting.append(futures[i].result())
        futures[i] = None  # a done future holds its chunks: let them go once embedded (flat memory)
        last = i + 1 == len(futures)
        pending = sum(len(batch.chunks) for batch in waiting)
        if not batches.should_embed_now(pending, last or futures[i + 1].state.is_final(), last, settings):
            continue
        if model_loaded is not None:
            model_loaded.result()  # a model that cannot load fails the run here, with its reason
            model_loaded = None
        embedded += embed_and_commit(waiting, files, plan, settings, collection)
        for parsed in waiting:
            reports.extend(parsed.reports)
            done += len(parsed.reports)
        waiting = []
        bar.report(done, len(plan.to_ingest))
    return {"parsed": len(plan.to_ingest), "embedded": embedded}


def embed_and_commit(
    waiting: list, files: dict, plan: sync_plan.SyncPlan, settings: RaglineSettings, collection: str
) -> int:
    """Embed the chunks of the waiting parsed batches into staging, then commit their documents."""
    embed = with_retries(t.embed_chunks, settings)
    stage = with_retries(t.stage_chunks, settings)  # retried on its own: a store error never re-embeds
    commit = with_retries(t.commit_documents, settings)
    chunks = [chunk for parsed in waiting for chunk in parsed.chunks]
    embedded = 0
    for group in batched(chunks, settings.ingest.chunks_per_batch):
        embedded += stage(group, embed(group, settings), settings, collection, plan.root)
    records = [
        record for parsed in waiting for record in sync_plan.records_for(parsed, files, plan.previous, plan.signature)
    ]
    if records:
        commit(settings, collection, plan.root, records)
    return embedded


def publish_report(collection: str, summary: dict) -> None:
    rows = [
        {
            "file": f["source"],
            "status": f["status"],
            "chunks": f["chunks"],
            "reason": f["reason"] or "",
            "seconds": f["seconds"],
        }
        for f in summary["files"]
    ]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary["counts"].items()))
    create_table_artifact(
        key=artifact_key("ingest-report", collection),
        table=rows,
        description=f"Ingestion of {summary['root']} into {collection}: {counts}; {summary['chunks']} chunks.",
    )
