"""Incremental sync of a folder into a collection: what to skip, (re)ingest, record and delete.

The store keeps a manifest of complete documents next to each collection (design and crash
argument in ragline/store/manifest.py). A run:

1. reads the manifest and the per-version chunk counts of the collection (no model is loaded);
2. discovers files, reusing recorded hashes while stat fingerprints are unchanged (discovery.py);
3. skips a file whose content hash is the recorded live version *and* whose chunks are all in the
   collection, skips a file whose unchanged content failed to parse before (reporting it again),
   and (re)ingests the rest;
4. per parsed batch: embeds chunks into staging, then commits the batch's documents (atomic swap
   of each document's version, then its manifest record);
5. deletes the documents that left the source (prune), then drops staging.

A run killed anywhere leaves the manifest describing only documents whose chunks are complete,
and any other state (staged points, a second version next to the first, a new document without a
record) is what step 3 re-ingests or step 5 deletes: re-running converges to the clean-run state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from ragline.ingestion.discovery import Discovery, KnownHash
from ragline.records import DocumentRecord, FileReport, ParsedBatch, SourceFile
from ragline.store import EmbedderMismatchError, VectorStore
from ragline.store.manifest import manifest_name, staging_name

logger = logging.getLogger(__name__)


class IngestError(RuntimeError):
    """The run stopped on an error that retries did not clear; committed documents are intact."""


@dataclass
class SyncState:
    root: str
    manifest: dict[str, DocumentRecord] = field(default_factory=dict)
    chunk_counts: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class SyncPlan:
    root: str
    to_ingest: list[SourceFile] = field(default_factory=list)
    unchanged: list[SourceFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Rows for unchanged files whose content failed to parse in an earlier run.
    known_failures: list[FileReport] = field(default_factory=list)
    # Records of skipped files whose fingerprint moved (touched, copied): saves the next hash.
    refreshed: list[DocumentRecord] = field(default_factory=list)
    previous: dict[str, DocumentRecord] = field(default_factory=dict)


def load_state(store: VectorStore, collection: str, root: str, embedder_name: str, reembed: bool) -> SyncState:
    """Read what the collection holds under `root`, after checking it suits the embedding model.

    A collection built with another model is refused, or with `reembed` dropped (with its
    manifest) so that every document is embedded again. Staged points left by a killed run are
    dropped: staging belongs to the run holding the ingest lock, which is this one.
    """
    info = store.collection_info(collection)
    if info is not None and info.embedder != embedder_name:
        if not reembed:
            raise EmbedderMismatchError(
                f"collection {collection!r} was built with {info.embedder}, but the settings now "
                f"use {embedder_name}; vectors of two models cannot be searched together. Re-run "
                "with --reembed to rebuild the collection with the new model, restore "
                "embedding.model, or ingest into another collection (--collection NAME)."
            )
        logger.warning(
            "re-embedding: dropping %s (built with %s) to rebuild it with %s", collection, info.embedder, embedder_name
        )
        store.drop_collection(collection)
        store.drop_collection(manifest_name(collection))
    store.drop_collection(staging_name(collection))
    return SyncState(root, store.read_manifest(collection, root), store.chunk_counts(collection, root))


def known_hashes(state: SyncState) -> dict[str, KnownHash]:
    return {
        source: KnownHash(record.fingerprint, record.seen_hash, record.hashed_ns)
        for source, record in state.manifest.items()
        if record.fingerprint and record.seen_hash
    }


def _live_versions(record: DocumentRecord) -> dict[str, int]:
    return {record.live_hash: record.chunks} if record.live_hash and record.chunks else {}


def plan_sync(discovery: Discovery, state: SyncState, prune: bool, force: bool = False) -> SyncPlan:
    """Decide per file: unchanged, known failure, or (re)ingest; and which documents left.

    Files that exist but could not be read this time (discovery reports) keep their chunks.
    `force` (re-embed) ingests every file again; each still replaces its old version atomically.
    """
    plan = SyncPlan(root=discovery.root, previous=dict(state.manifest))
    for source_file in discovery.files:
        record = state.manifest.get(source_file.source)
        intact = record is not None and state.chunk_counts.get(source_file.source, {}) == _live_versions(record)
        if force or not intact or record.seen_hash != source_file.sha256:
            plan.to_ingest.append(source_file)
            continue
        if record.failed_reason is None and record.live_hash == source_file.sha256:
            plan.unchanged.append(source_file)
        elif record.failed_reason is not None:
            reason = (
                f"{record.failed_reason} (content unchanged since that failure; not retried until the file changes)"
            )
            plan.known_failures.append(FileReport(source_file.source, "failed", reason=reason))
        else:
            plan.to_ingest.append(source_file)
            continue
        if (record.fingerprint, record.hashed_ns) != (source_file.fingerprint, source_file.hashed_ns):
            plan.refreshed.append(replace(record, fingerprint=source_file.fingerprint, hashed_ns=source_file.hashed_ns))
    if prune:
        present = {f.source for f in discovery.files} | {r.source for r in discovery.reports}
        stored = set(state.manifest) | set(state.chunk_counts)
        plan.removed = sorted(stored - present)
    return plan


def records_for(
    batch: ParsedBatch, files: dict[str, SourceFile], previous: dict[str, DocumentRecord]
) -> list[DocumentRecord]:
    """Manifest records for a parsed batch; transient failures get none (retried next run).

    A file whose content failed keeps its previous live version (its chunks stay searchable).
    """
    records = []
    for report in batch.reports:
        if report.source in batch.transient_failures:
            continue
        source_file = files[report.source]
        seen = dict(seen_hash=source_file.sha256, fingerprint=source_file.fingerprint, hashed_ns=source_file.hashed_ns)
        if report.status == "failed":
            before = previous.get(report.source)
            live = dict(live_hash=before.live_hash, chunks=before.chunks) if before else {}
            records.append(DocumentRecord(report.source, **live, **seen, failed_reason=report.reason))
        else:
            records.append(DocumentRecord(report.source, source_file.sha256, report.chunks, **seen))
    return records
