"""Answer a question: retrieve passages, build the prompt, generate, cite (no Prefect here)."""

from __future__ import annotations

import time

from ragline import retrieval
from ragline.embedders import Embedder
from ragline.generators import Generator
from ragline.prompting import build_messages, citations_from_hits
from ragline.records import Answer, Hit
from ragline.retrieval import RetrievalOptions
from ragline.settings import RaglineSettings
from ragline.store import SearchFilter, VectorStore, collection_for
from ragline.timing import seconds_since


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


def generate_answer(question: str, hits: list[Hit], generator: Generator, settings: RaglineSettings) -> Answer:
    g = settings.generation
    started = time.perf_counter()
    citations = citations_from_hits(hits)
    budget = generator.context_window - g.max_tokens - 16
    messages, used = build_messages(question, citations, generator.count_tokens, budget)
    text = generator.generate(messages, g.max_tokens, g.temperature).strip()
    return Answer(answer=text, citations=used, timings={"generate_s": seconds_since(started)})
