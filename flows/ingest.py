"""Ingestion flow: discover -> plan (skip unchanged) -> parse+chunk -> embed+upsert -> finalize."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import artifact_key, with_retries
from ragline import progress
from ragline.records import FileReport
from settings import get_settings
from tasks import ingest as t


def batched(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


# Two workers: parsing the next files overlaps with embedding the current chunks.
@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False)
def ingest(path: str, collection: str | None = None, prune: bool = True) -> dict:
    """Sync the documents under `path` into `collection`; returns a summary with a per-file report."""
    settings = get_settings()
    collection = collection or settings.store.collection
    logger = get_run_logger()

    discovery = with_retries(t.discover_files, settings)(path, settings)
    plan = with_retries(t.plan_sync, settings)(discovery, settings, collection, prune)
    logger.info(
        "%d files to ingest, %d unchanged, %d removed",
        len(plan.to_ingest), len(plan.unchanged), len(plan.removed),
    )
    reports = list(discovery.reports) + [FileReport(f.source, "unchanged") for f in plan.unchanged]
    completed = embed_parsed_batches(plan, settings, collection, reports)
    with_retries(t.finalize_documents, settings)(settings, collection, plan.root, completed, plan.removed)
    reports += [FileReport(source, "deleted") for source in plan.removed]
    summary = summarize(collection, plan.root, reports)
    publish_report(collection, summary)
    return summary


def embed_parsed_batches(plan, settings, collection: str, reports: list[FileReport]) -> dict[str, str]:
    """Parse file batches concurrently; embed chunks in fixed-size batches as they arrive."""
    parse = with_retries(t.parse_files, settings)
    embed = with_retries(t.embed_and_upsert, settings)
    hashes = {f.source: f.sha256 for f in plan.to_ingest}
    futures = [parse.submit(files, settings) for files in batched(plan.to_ingest, settings.ingest.files_per_batch)]
    size = settings.ingest.chunks_per_batch
    pending, completed, done = [], {}, 0
    progress.report(0, len(plan.to_ingest))
    for future in futures:
        parsed = future.result()
        reports.extend(parsed.reports)
        done += len(parsed.reports)
        pending.extend(parsed.chunks)
        while len(pending) >= size:
            embed(pending[:size], settings, collection, plan.root)
            pending = pending[size:]
        completed.update({r.source: hashes[r.source] for r in parsed.reports if r.status != "failed"})
        progress.report(done, len(plan.to_ingest))
    if pending:
        embed(pending, settings, collection, plan.root)
    return completed


def summarize(collection: str, root: str, reports: list[FileReport]) -> dict:
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


def publish_report(collection: str, summary: dict) -> None:
    rows = [
        {"file": f["source"], "status": f["status"], "chunks": f["chunks"],
         "reason": f["reason"] or "", "seconds": f["seconds"]}
        for f in summary["files"]
    ]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary["counts"].items()))
    create_table_artifact(
        key=artifact_key("ingest-report", collection),
        table=rows,
        description=f"Ingestion of {summary['root']} into {collection}: {counts}; {summary['chunks']} chunks.",
    )
