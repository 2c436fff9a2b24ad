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

What a run may delete (the deletion guard, `guard_deletions`): only documents inside its scope (the
file or folder it was given, ragline.ingestion.discovery.Scope), never when the listing was
incomplete (an unreadable folder, an I/O error), never on an empty listing, and never more than
`ingest.max_delete_fraction` of the scope's documents, unless the caller allows it explicitly
(`allow_mass_delete`). Kept documents are reported with the reason.

A document whose record was made with other parsing/chunking settings (its `signature`) is
re-ingested, in place and one document at a time like an edit. A change of embedding model is a
shadow rebuild instead (ragline/ingestion/rebuild.py): vectors of two models cannot share a collection.

A run killed anywhere leaves the manifest describing only documents whose chunks are complete,
and any other state (staged points, a second version next to the first, a new document without a
record) is what step 3 re-ingests or step 5 deletes: re-running converges to the clean-run state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from ragline.ingestion import rebuild
from ragline.ingestion.discovery import Discovery, KnownHash, Scope, resolve_scope
from ragline.records import DocumentRecord, FileReport, ParsedBatch, SourceFile
from ragline.store import VectorStore
from ragline.store.manifest import staging_name

logger = logging.getLogger(__name__)


class IngestError(RuntimeError):
    """The run stopped on an error that retries did not clear; committed documents are intact."""


@dataclass
class SyncState:
    root: str
    manifest: dict[str, DocumentRecord] = field(default_factory=dict)
    chunk_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    scope: Scope | None = None
    # The collection this run writes: the collection itself, or its shadow rebuild.
    target: str = ""
    # The parsing/chunking settings' signature; records made with another are re-ingested.
    signature: str = ""


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
    # Documents the deletion guard kept (status "kept", with the reason), and why, in one line.
    kept: list[FileReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Unchanged files re-ingested because their record was made with other settings.
    resettled: list[str] = field(default_factory=list)
    signature: str = ""


def load_state(
    store: VectorStore, collection: str, path: str, embedder_name: str, reembed: bool, signature: str = ""
) -> SyncState:
    """Resolve the run's scope and read what the collection (or its rebuild) holds under its root.

    A collection built with another model is refused, or with `reembed` rebuilt aside
    (ragline/ingestion/rebuild.py) while it keeps answering. Staged points left by a killed run
    are dropped: staging belongs to the run holding the ingest lock, which is this one.
    """
    target = rebuild.choose_target(store, collection, embedder_name, reembed)
    known_roots = set(store.documents_per_root(collection))
    if target != collection:
        known_roots |= set(store.documents_per_root(target))
    scope = resolve_scope(path, sorted(known_roots))
    if target != collection and scope.within:
        raise rebuild.RebuildScopeError(
            f"collection {collection!r} is being rebuilt with {embedder_name}, which re-embeds whole "
            f"folders: run `ragline ingest {scope.root} --collection {collection}` (not a file or "
            "subfolder of it) to build and switch to the new collection."
        )
    for leftover in {staging_name(collection), staging_name(target)}:
        store.drop_collection(leftover)
    root = scope.root
    return SyncState(
        root, store.read_manifest(target, root), store.chunk_counts(target, root), scope, target, signature
    )


def known_hashes(state: SyncState) -> dict[str, KnownHash]:
    return {
        source: KnownHash(record.fingerprint, record.seen_hash, record.hashed_ns)
        for source, record in state.manifest.items()
        if record.fingerprint and record.seen_hash
    }


def _live_versions(record: DocumentRecord) -> dict[str, int]:
    return {record.live_hash: record.chunks} if record.live_hash and record.chunks else {}


def _settled(record: DocumentRecord, signature: str) -> bool:
    """Made with these parsing/chunking settings (records from before signatures count as made so)."""
    return not signature or not record.signature or record.signature == signature


def plan_sync(
    discovery: Discovery,
    state: SyncState,
    prune: bool,
    force: bool = False,
    max_delete_fraction: float = 0.5,
    allow_mass_delete: bool = False,
) -> SyncPlan:
    """Decide per file: unchanged, known failure, or (re)ingest; and which documents left.

    Files that exist but could not be read this time (discovery reports) keep their chunks.
    `force` (re-embed) ingests every file again; each still replaces its old version atomically.
    Deletions are limited to the run's scope and checked by `guard_deletions`.
    """
    plan = SyncPlan(root=discovery.root, previous=dict(state.manifest), signature=state.signature)
    for source_file in discovery.files:
        record = state.manifest.get(source_file.source)
        intact = record is not None and state.chunk_counts.get(source_file.source, {}) == _live_versions(record)
        if force or not intact or record.seen_hash != source_file.sha256:
            plan.to_ingest.append(source_file)
            continue
        if not _settled(record, state.signature):
            plan.to_ingest.append(source_file)
            plan.resettled.append(source_file.source)
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
    if plan.resettled:
        plan.notes.append(
            f"{len(plan.resettled)} unchanged documents were re-ingested: they were made with other "
            "parsing or chunking settings (ingest.strategy, chunking.*)"
        )
    if prune:
        scope = state.scope or Scope(state.root, state.root, state.root)
        present = {f.source for f in discovery.files} | {r.source for r in discovery.reports}
        stored = {s for s in set(state.manifest) | set(state.chunk_counts) if scope.covers(s)}
        plan.removed = sorted(stored - present)
        guard_deletions(plan, discovery, scope, len(stored), max_delete_fraction, allow_mass_delete)
    return plan


def guard_deletions(
    plan: SyncPlan, discovery: Discovery, scope: Scope, stored: int, max_fraction: float, allow_mass_delete: bool
) -> None:
    """Move `plan.removed` to `plan.kept` when the listing cannot be trusted or too much would go."""
    if not plan.removed:
        return
    where, n = scope.describe(), len(plan.removed)
    if discovery.listing_errors:
        errors = "; ".join(discovery.listing_errors[:3])
        why = f"not deleted: the listing of {where} was incomplete ({errors})"
        note = (
            f"kept {n} documents not found on disk: the listing of {where} was incomplete "
            f"({errors}); fix the access and re-run"
        )
    elif not discovery.files and not discovery.reports and not allow_mass_delete:
        why = f"not deleted: {where} listed no files at all (an unmounted or emptied volume?)"
        note = (
            f"kept all {n} documents: {where} listed no files (an unmounted or emptied volume?); "
            "if the folder really is empty now, re-run with --allow-mass-delete"
        )
    elif n > max_fraction * stored and not allow_mass_delete:
        why = f"not deleted: the run would delete {n} of the {stored} documents under {where}"
        note = (
            f"refused to delete {n} of the {stored} documents under {where} (more than "
            f"ingest.max_delete_fraction = {max_fraction:g}); if the files really are gone, re-run with "
            "--allow-mass-delete (flow parameter allow_mass_delete=true)"
        )
    else:
        return
    plan.kept = [FileReport(source, "kept", reason=why) for source in plan.removed]
    plan.notes.append(note)
    plan.removed = []
    logger.warning("%s", note)


def records_for(
    batch: ParsedBatch, files: dict[str, SourceFile], previous: dict[str, DocumentRecord], signature: str = ""
) -> list[DocumentRecord]:
    """Manifest records for a parsed batch; transient failures get none (retried next run).

    A file whose content failed keeps its previous live version (its chunks stay searchable).
    """
    records = []
    for report in batch.reports:
        if report.source in batch.transient_failures:
            continue
        source_file = files[report.source]
        seen = dict(
            seen_hash=source_file.sha256,
            fingerprint=source_file.fingerprint,
            hashed_ns=source_file.hashed_ns,
            signature=signature,
        )
        if report.status == "failed":
            before = previous.get(report.source)
            live = dict(live_hash=before.live_hash, chunks=before.chunks) if before else {}
            records.append(DocumentRecord(report.source, **live, **seen, failed_reason=report.reason))
        else:
            records.append(DocumentRecord(report.source, source_file.sha256, report.chunks, **seen))
    return records
