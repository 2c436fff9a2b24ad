"""The work behind the flows, as plain functions: parse, embed, store, answer (sync: ragline.sync).

Nothing here imports Prefect; tasks/ wraps these functions and flows/ orchestrates them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ragline import crashpoints, retrieval
from ragline.embedders import Embedder, EmbedderSpec
from ragline.generators import Generator, GeneratorSpec
from ragline.parse_pool import ParseOptions, get_parser_pool
from ragline.prompting import build_messages, citations_from_hits
from ragline.records import Answer, Hit, ParsedBatch, SourceFile
from ragline.retrieval import RetrievalOptions
from ragline.sparse import sparse_documents
from ragline.store import CollectionInfo, SearchFilter, VectorStore


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
        repeat_penalty=g.repeat_penalty,
    )


def collection_for(embedder: Embedder, name: str) -> CollectionInfo:
    return CollectionInfo(name=name, embedder=embedder.name, dimensions=embedder.dimensions)


# -- ingestion ----------------------------------------------------------------------------------


def parse_options(settings) -> ParseOptions:
    c = settings.chunking
    return ParseOptions(
        strategy=settings.ingest.strategy,
        spacy_model=settings.ingest.spacy_model,
        sentence_splitter=settings.ingest.sentence_splitter,
        max_characters=c.max_characters,
        new_after_n_chars=c.new_after_n_chars,
        overlap=c.overlap,
        combine_text_under_n_chars=c.combine_text_under_n_chars,
    )


def parse_batch_size(files: int, configured: int = 0) -> int:
    """Files per parse task run: `configured`, or about 16 task runs per ingest, 8 to 64 files each.

    Each task run costs ~50 ms of Prefect bookkeeping on 2 cores, taken from the embedder; batches
    of 8 or more files keep that under a few percent, and 64 keeps progress reports frequent.
    """
    if configured > 0:
        return configured
    return max(8, min(64, -(-files // 16)))


def parse_files(files: list[SourceFile], settings) -> ParsedBatch:
    """Partition and chunk each file in a parser process, within ingest.parse_timeout_s.

    A file that fails, hangs or crashes its parser becomes a report row, never an exception.
    """
    pool = get_parser_pool(parse_options(settings), settings.ingest.parse_workers)
    timeout_s = settings.ingest.parse_timeout_s
    # Two parse task runs at a time (the flow's task runner) would leave a bigger pool idle.
    with ThreadPoolExecutor(max_workers=pool.workers) as threads:
        outcomes = threads.map(lambda source_file: pool.parse(source_file, timeout_s), files)
    batch = ParsedBatch()
    for source_file, outcome in zip(files, outcomes):
        crashpoints.reached("parse")
        batch.chunks.extend(outcome.chunks)
        batch.reports.append(outcome.report)
        if outcome.report.status == "failed" and not outcome.content_failure:
            batch.transient_failures.append(source_file.source)
    return batch


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def embed_and_store(chunks, embedder: Embedder, store: VectorStore, collection: str, root: str) -> int:
    if not chunks:
        return 0
    texts = [chunk.text for chunk in chunks]
    vectors = embedder.embed_documents(texts)
    # BM25 vectors are stored with every chunk so any retrieval mode works without a re-ingest.
    store.upsert(collection, chunks, vectors, root, sparse=sparse_documents(texts))
    return len(chunks)


# -- answering ----------------------------------------------------------------------------------


def retrieve(
    question: str,
    k: int,
    filters: SearchFilter | None,
    embedder: Embedder,
    store: VectorStore,
    collection: str,
    options: RetrievalOptions | None = None,
) -> list[Hit]:
    if store.collection_info(collection) is None:
        raise LookupError(f"collection {collection!r} is empty: run `ragline ingest PATH` first")
    store.ensure_collection(collection_for(embedder, collection))
    return retrieval.search(question, k, filters, embedder, store, collection, options or RetrievalOptions())


def generate_answer(question: str, hits: list[Hit], generator: Generator, settings) -> Answer:
    g = settings.generation
    started = time.perf_counter()
    citations = citations_from_hits(hits)
    budget = generator.context_window - g.max_tokens - 16
    messages, used = build_messages(question, citations, generator.count_tokens, budget)
    text = generator.generate(messages, g.max_tokens, g.temperature).strip()
    return Answer(answer=text, citations=used, timings={"generate_s": _since(started)})
