"""Ingestion's work on one batch: parse files into chunks, embed chunks and store them.

Plain functions (no Prefect): ragline.tasks.ingest wraps each in a task, one run per batch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ragline import crashpoints
from ragline.embedders import Embedder
from ragline.parsing.chunking import valid_utf8
from ragline.parsing.options import ParseOptions
from ragline.parsing.pool import get_parser_pool
from ragline.records import ParsedBatch, SourceFile
from ragline.settings import RaglineSettings
from ragline.sparse import sparse_documents
from ragline.store import VectorStore


def parse_options(settings: RaglineSettings) -> ParseOptions:
    c = settings.chunking
    return ParseOptions(
        strategy=settings.ingest.strategy,
        spacy_model=settings.ingest.spacy_model,
        sentence_splitter=settings.ingest.sentence_splitter,
        max_characters=c.max_characters,
        new_after_n_chars=c.new_after_n_chars,
        overlap=c.overlap,
        combine_text_under_n_chars=c.combine_text_under_n_chars,
        memory_mb=settings.ingest.parser_memory_mb,
        max_unzipped_mb=settings.ingest.max_unzipped_mb,
    )


def parse_batch_size(files: int, configured: int = 0) -> int:
    """Files per parse task run: `configured`, or about 16 task runs per ingest, 8 to 64 files each.

    Each task run costs ~50 ms of Prefect bookkeeping on 2 cores, taken from the embedder; batches
    of 8 or more files keep that under a few percent, and 64 keeps progress reports frequent.
    """
    if configured > 0:
        return configured
    return max(8, min(64, -(-files // 16)))


def batched(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


def should_embed_now(pending_chunks: int, next_parse_ready: bool, last: bool, settings: RaglineSettings) -> bool:
    """Whether to embed the chunks parsed so far, or wait for the next parsed batch.

    Embed at `chunks_per_batch` chunks (the model is fastest on full batches, and per-call costs
    are paid per flush), at the end, or as soon as a full model batch waits and the next parse
    result is not ready yet, so that the embedder never idles behind the parser.
    """
    if last or pending_chunks >= settings.ingest.chunks_per_batch:
        return True
    return not next_parse_ready and pending_chunks >= settings.embedding.batch_size


def parse_files(files: list[SourceFile], settings: RaglineSettings) -> ParsedBatch:
    """Partition and chunk each file in a parser process, within ingest.parse_timeout_s.

    A file that fails, hangs or crashes its parser becomes a report row, never an exception.
    """
    pool = get_parser_pool(parse_options(settings), settings.ingest.parse_workers)
    timeout_s = settings.ingest.parse_timeout_s
    # Two parse task runs at a time (the flow's task runner) would leave a bigger pool idle.
    with ThreadPoolExecutor(max_workers=pool.workers) as threads:
        outcomes = threads.map(lambda source_file: pool.parse(source_file, timeout_s), files)
    batch = ParsedBatch()
    for source_file, outcome in zip(files, outcomes, strict=True):
        crashpoints.reached("parse")
        # A reason can quote the file's path; keep it valid UTF-8 for the report and the manifest.
        outcome.report.reason = valid_utf8(outcome.report.reason)
        batch.chunks.extend(outcome.chunks)
        batch.reports.append(outcome.report)
        if outcome.report.status == "failed" and not outcome.content_failure:
            batch.transient_failures.append(source_file.source)
    return batch


def embed_chunks(chunks, embedder: Embedder) -> tuple:
    """(dense vectors, BM25 sparse vectors) for the chunks; the expensive half of ingesting."""
    texts = [chunk.text for chunk in chunks]
    # BM25 vectors are stored with every chunk so any retrieval mode works without a re-ingest.
    return embedder.embed_documents(texts), sparse_documents(texts)


def store_embedded(chunks, embedded: tuple, store: VectorStore, collection: str, root: str) -> int:
    """Upsert chunks with the vectors embed_chunks made for them (a separate step, so a store
    error is retried without embedding again)."""
    if not chunks:
        return 0
    vectors, sparse = embedded
    store.upsert(collection, chunks, vectors, root, sparse=sparse)
    return len(chunks)
