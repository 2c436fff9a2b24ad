"""Prefect task wrappers for ingestion: each call handles a batch of files or chunks, never one chunk.

Nothing here is cached or persisted (NOT_KEPT): the arguments and results are file lists, chunk
texts and vectors, which Prefect would otherwise hash for cache keys and pickle into its result
storage on every served or deployed run, never cleaned. Nobody reads them back; the flow's own
summary is what is persisted.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from ragline import backends, crashpoints
from ragline.embedders import get_embedder
from ragline.ingestion import batches, rebuild, sync
from ragline.records import Chunk, DocumentRecord, ParsedBatch, SourceFile
from ragline.settings import RaglineSettings
from ragline.store import collection_for, open_store
from ragline.store.manifest import staging_name
from ragline.tasks.cancellation import raise_if_cancelled

NOT_KEPT = dict(cache_policy=NO_CACHE, persist_result=False)


load_sync_state = task(name="load-sync-state", **NOT_KEPT)(sync.load_sync_state)
discover_files = task(name="discover-files", **NOT_KEPT)(sync.discover_files)
plan_sync = task(name="plan-sync", **NOT_KEPT)(sync.plan_sync)


@task(name="parse-files", **NOT_KEPT)
def parse_files(files: list[SourceFile], settings: RaglineSettings) -> ParsedBatch:
    return batches.parse_files(files, settings)


@task(name="load-embedder", **NOT_KEPT)
def load_embedder(settings: RaglineSettings) -> str:
    """Load the model while the first files parse (the parser processes start meanwhile), so
    the first embed finds it ready."""
    embedder = get_embedder(backends.embedder_spec(settings))
    embedder.warm_up()
    return embedder.name


@task(name="embed-chunks", **NOT_KEPT)
def embed_chunks(chunks: list[Chunk], settings: RaglineSettings) -> tuple:
    """Dense and BM25 vectors for a batch of chunks; stage_chunks stores them (a separate task,
    so a store error is retried without embedding again)."""
    raise_if_cancelled()
    crashpoints.reached("embed")
    return batches.embed_chunks(chunks, get_embedder(backends.embedder_spec(settings)))


@task(name="stage-chunks", **NOT_KEPT)
def stage_chunks(chunks: list[Chunk], embedded: tuple, settings: RaglineSettings, collection: str, root: str) -> int:
    """Write embedded chunks to the run's staging collection; queries see them only once committed."""
    embedder = get_embedder(backends.embedder_spec(settings))
    store = open_store(settings)
    store.ensure_collection(collection_for(embedder, collection))
    staging = staging_name(collection)
    store.ensure_collection(collection_for(embedder, staging))
    written = batches.store_embedded(chunks, embedded, store, staging, root)
    crashpoints.reached("staged")
    return written


@task(name="commit-documents", **NOT_KEPT)
def commit_documents(settings: RaglineSettings, collection: str, root: str, records: list[DocumentRecord]) -> int:
    open_store(settings).commit_documents(collection, root, records, staging_name(collection))
    return len(records)


@task(name="refresh-manifest", **NOT_KEPT)
def refresh_manifest(settings: RaglineSettings, collection: str, root: str, records: list[DocumentRecord]) -> int:
    open_store(settings).write_manifest(collection, root, records)
    return len(records)


@task(name="finalize-documents", **NOT_KEPT)
def finalize_documents(settings: RaglineSettings, collection: str, root: str, removed: list[str]) -> int:
    """Delete documents that left the source, then the run's staging collection."""
    store = open_store(settings)
    for source in removed:
        store.remove_document(collection, root, source)
    store.drop_collection(staging_name(collection))
    return len(removed)


@task(name="finish-rebuild", **NOT_KEPT)
def finish_rebuild(settings: RaglineSettings, collection: str, build: str, complete: bool, allow: bool) -> str:
    """Switch the collection to its finished rebuild (atomic), or say what it still waits for."""
    fraction = settings.ingest.max_delete_fraction
    return rebuild.finish_rebuild(open_store(settings), collection, build, complete, fraction, allow)
