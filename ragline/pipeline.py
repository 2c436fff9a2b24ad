"""The work behind the flows, as plain functions: plan a sync, parse, embed, store, answer.

Nothing here imports Prefect; tasks/ wraps these functions and flows/ orchestrates them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ragline.chunking import chunk_elements
from ragline.discovery import Discovery
from ragline.embedders import Embedder, EmbedderSpec
from ragline.generators import Generator, GeneratorSpec
from ragline.parsing import ParseError, partition_file
from ragline.prompting import build_messages, citations_from_hits
from ragline.records import Answer, FileReport, Hit, ParsedBatch, SourceFile
from ragline.store import CollectionInfo, SearchFilter, VectorStore

NO_TEXT = "no text found: the document is empty, scanned without a text layer, or encrypted"


def embedder_spec(settings) -> EmbedderSpec:
    e = settings.embedding
    return EmbedderSpec(
        backend=e.backend,
        model=e.model,
        device=e.device,
        batch_size=e.batch_size,
        max_seq_length=e.max_seq_length,
        api_base=e.api_base,
        api_key=e.api_key.get_secret_value() if e.api_key else None,
    )


def generator_spec(settings) -> GeneratorSpec:
    g = settings.generation
    return GeneratorSpec(
        backend=g.backend,
        model=g.model,
        context_window=g.context_window,
        threads=g.threads,
        n_gpu_layers=g.n_gpu_layers,
        api_base=g.api_base,
        api_key=g.api_key.get_secret_value() if g.api_key else None,
    )


def collection_for(embedder: Embedder, name: str) -> CollectionInfo:
    return CollectionInfo(name=name, embedder=embedder.name, dimensions=embedder.dimensions)


# -- ingestion ----------------------------------------------------------------------------------


@dataclass
class SyncPlan:
    root: str
    to_ingest: list[SourceFile] = field(default_factory=list)
    unchanged: list[SourceFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def plan_sync(discovery: Discovery, stored: dict[str, set[str]], prune: bool) -> SyncPlan:
    """Unchanged files (same single hash in the store) are skipped; the rest are (re)ingested.

    A document stored under two hashes is a replacement a crash interrupted: it is redone.
    Files that vanished are removed when `prune` is on; files that exist but could not be read
    this time keep their previous chunks.
    """
    plan = SyncPlan(root=discovery.root)
    for source_file in discovery.files:
        if stored.get(source_file.source) == {source_file.sha256}:
            plan.unchanged.append(source_file)
        else:
            plan.to_ingest.append(source_file)
    if prune:
        present = {f.source for f in discovery.files} | {r.source for r in discovery.reports}
        plan.removed = sorted(source for source in stored if source not in present)
    return plan


def parse_files(files: list[SourceFile], settings) -> ParsedBatch:
    """Partition and chunk each file; a file that fails becomes a report row, never an exception."""
    batch = ParsedBatch()
    c = settings.chunking
    for source_file in files:
        started = time.perf_counter()
        try:
            elements = partition_file(source_file.path, settings.ingest.strategy, settings.ingest.spacy_model)
            chunks = chunk_elements(
                elements, source_file, c.max_characters, c.new_after_n_chars, c.overlap, c.combine_text_under_n_chars
            )
        except ParseError as exc:
            batch.reports.append(FileReport(source_file.source, "failed", reason=str(exc), seconds=_since(started)))
            continue
        if chunks:
            batch.chunks.extend(chunks)
            report = FileReport(source_file.source, "ingested", chunks=len(chunks), seconds=_since(started))
        else:
            report = FileReport(source_file.source, "skipped", reason=_no_text_reason(source_file), seconds=_since(started))
        batch.reports.append(report)
    return batch


def _no_text_reason(source_file: SourceFile) -> str:
    if source_file.size == 0:
        return "empty file (0 bytes)"
    if source_file.file_type == "pdf" and _pdf_is_encrypted(source_file.path):
        return "encrypted or password-protected PDF: decrypt it first"
    return NO_TEXT


def _pdf_is_encrypted(path: str) -> bool:
    try:
        from pypdf import PdfReader

        return bool(PdfReader(path).is_encrypted)
    except Exception:
        return False


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def embed_and_store(chunks, embedder: Embedder, store: VectorStore, collection: str, root: str) -> int:
    if not chunks:
        return 0
    vectors = embedder.embed_documents([chunk.text for chunk in chunks])
    store.upsert(collection, chunks, vectors, root)
    return len(chunks)


def finalize_documents(
    store: VectorStore, collection: str, root: str, completed: dict[str, str], removed: list[str]
) -> None:
    """Drop superseded versions of re-ingested documents, then documents that left the source."""
    for source, doc_hash in completed.items():
        store.delete_document(collection, source, root, keep_hash=doc_hash)
    for source in removed:
        store.delete_document(collection, source, root)


# -- answering ----------------------------------------------------------------------------------


def retrieve(
    question: str,
    k: int,
    filters: SearchFilter | None,
    embedder: Embedder,
    store: VectorStore,
    collection: str,
) -> list[Hit]:
    if store.collection_info(collection) is None:
        raise LookupError(f"collection {collection!r} is empty: run `ragline ingest PATH` first")
    store.ensure_collection(collection_for(embedder, collection))
    vector = np.asarray(embedder.embed_query(question), dtype=np.float32)
    return store.search(collection, vector, k, filters)


def generate_answer(question: str, hits: list[Hit], generator: Generator, settings) -> Answer:
    g = settings.generation
    started = time.perf_counter()
    citations = citations_from_hits(hits)
    budget = generator.context_window - g.max_tokens - 16
    messages, used = build_messages(question, citations, generator.count_tokens, budget)
    text = generator.generate(messages, g.max_tokens, g.temperature).strip()
    return Answer(answer=text, citations=used, timings={"generate_s": _since(started)})
