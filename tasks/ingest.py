"""Prefect task wrappers for ingestion: each call handles a batch of files or chunks, never one chunk."""

from __future__ import annotations

from prefect import task

from ragline import backends, crashpoints
from ragline.embedders import get_embedder
from ragline.ingestion import batches
from ragline.ingestion import plan as sync_plan
from ragline.ingestion.discovery import Discovery, KnownHash, discover
from ragline.records import Chunk, DocumentRecord, ParsedBatch, SourceFile
from ragline.settings import RaglineSettings
from ragline.store import collection_for, open_store
from ragline.store.manifest import staging_name


@task(name="load-sync-state")
def load_sync_state(settings: RaglineSettings, collection: str, root: str, reembed: bool) -> sync_plan.SyncState:
    # The spec names the embedder without loading it: an unchanged folder never needs the model.
    name = backends.embedder_spec(settings).name
    return sync_plan.load_state(open_store(settings), collection, root, name, reembed)


@task(name="discover-files")
def discover_files(root: str, settings: RaglineSettings, known: dict[str, KnownHash] | None = None) -> Discovery:
    i = settings.ingest
    return discover(root, i.include, i.exclude, i.max_file_mb, known)


@task(name="plan-sync")
def plan_sync(discovery: Discovery, state: sync_plan.SyncState, prune: bool, reembed: bool) -> sync_plan.SyncPlan:
    return sync_plan.plan_sync(discovery, state, prune, force=reembed)


@task(name="parse-files")
def parse_files(files: list[SourceFile], settings: RaglineSettings) -> ParsedBatch:
    return batches.parse_files(files, settings)


@task(name="load-embedder")
def load_embedder(settings: RaglineSettings) -> str:
    """Load the model while the first files parse (the parser processes start meanwhile), so
    the first embed finds it ready."""
    embedder = get_embedder(backends.embedder_spec(settings))
    embedder.warm_up()
    return embedder.name


@task(name="embed-and-stage")
def embed_and_stage(chunks: list[Chunk], settings: RaglineSettings, collection: str, root: str) -> int:
    """Embed chunks into the run's staging collection; queries see them only once committed."""
    crashpoints.reached("embed")
    embedder = get_embedder(backends.embedder_spec(settings))
    store = open_store(settings)
    store.ensure_collection(collection_for(embedder, collection))
    staging = staging_name(collection)
    store.ensure_collection(collection_for(embedder, staging))
    written = batches.embed_and_store(chunks, embedder, store, staging, root)
    crashpoints.reached("staged")
    return written


@task(name="commit-documents")
def commit_documents(settings: RaglineSettings, collection: str, root: str, records: list[DocumentRecord]) -> int:
    open_store(settings).commit_documents(collection, root, records, staging_name(collection))
    return len(records)


@task(name="refresh-manifest")
def refresh_manifest(settings: RaglineSettings, collection: str, root: str, records: list[DocumentRecord]) -> int:
    open_store(settings).write_manifest(collection, root, records)
    return len(records)


@task(name="finalize-documents")
def finalize_documents(settings: RaglineSettings, collection: str, root: str, removed: list[str]) -> int:
    """Delete documents that left the source, then the run's staging collection."""
    store = open_store(settings)
    for source in removed:
        store.remove_document(collection, root, source)
    store.drop_collection(staging_name(collection))
    return len(removed)
