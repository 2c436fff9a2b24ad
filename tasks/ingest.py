"""Prefect task wrappers for ingestion: each call handles a batch of files or chunks, never one chunk."""

from __future__ import annotations

from prefect import task

from ragline import pipeline
from ragline.discovery import Discovery, discover
from ragline.embedders import get_embedder
from ragline.records import Chunk, ParsedBatch, SourceFile
from ragline.store import open_store


@task(name="discover-files")
def discover_files(root: str, settings) -> Discovery:
    i = settings.ingest
    return discover(root, i.include, i.exclude, i.max_file_mb)


@task(name="plan-sync")
def plan_sync(discovery: Discovery, settings, collection: str, prune: bool) -> pipeline.SyncPlan:
    embedder = get_embedder(pipeline.embedder_spec(settings))
    store = open_store(settings)
    store.ensure_collection(pipeline.collection_for(embedder, collection))
    stored = store.document_hashes(collection, discovery.root)
    return pipeline.plan_sync(discovery, stored, prune)


@task(name="parse-files")
def parse_files(files: list[SourceFile], settings) -> ParsedBatch:
    return pipeline.parse_files(files, settings)


@task(name="embed-and-upsert")
def embed_and_upsert(chunks: list[Chunk], settings, collection: str, root: str) -> int:
    embedder = get_embedder(pipeline.embedder_spec(settings))
    return pipeline.embed_and_store(chunks, embedder, open_store(settings), collection, root)


@task(name="finalize-documents")
def finalize_documents(settings, collection: str, root: str, completed: dict[str, str], removed: list[str]) -> int:
    pipeline.finalize_documents(open_store(settings), collection, root, completed, removed)
    return len(removed)
