"""Retrieval modes: dense vectors, BM25 sparse vectors, or both fused by Qdrant; optional reranking.

`retrieval.mode` picks the mode. Hybrid search sends one query to the store with a dense and a
sparse prefetch and lets Qdrant fuse them (reciprocal rank fusion, or distribution-based score
fusion), so a Qdrant server does the work server-side. A cross-encoder, when
`retrieval.rerank_model` names one, re-scores the fused candidates against the question.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ragline.embedders import Embedder
from ragline.records import Hit
from ragline.settings import RaglineSettings
from ragline.sparse import sparse_query
from ragline.store import SearchFilter, VectorStore
from ragline.store.base import FusionSpec


class Reranker(Protocol):
    name: str

    def rerank(self, question: str, hits: list[Hit]) -> list[Hit]: ...


@dataclass(frozen=True)
class RetrievalOptions:
    mode: str = "dense"
    fusion: FusionSpec = field(default_factory=FusionSpec)
    reranker: Reranker | None = None
    rerank_candidates: int = 20


def retrieval_options(settings: RaglineSettings, mode: str | None = None) -> RetrievalOptions:
    """The options the settings describe; `mode` overrides retrieval.mode (evaluation runs)."""
    r = settings.retrieval
    fusion = FusionSpec(method=r.fusion, rrf_k=r.rrf_k, candidates=r.candidates)
    reranker = load_reranker(r.rerank_model) if r.rerank_model else None
    return RetrievalOptions(mode or r.mode, fusion, reranker, r.rerank_candidates)


def search(
    question: str,
    k: int,
    filters: SearchFilter | None,
    embedder: Embedder,
    store: VectorStore,
    collection: str,
    options: RetrievalOptions,
) -> list[Hit]:
    """The top `k` chunks for `question` in the configured mode (reranked when configured)."""
    vector = query_vector(embedder, question) if options.mode != "sparse" else None
    sparse = sparse_query(question) if options.mode != "dense" else None
    fetch = max(k, options.rerank_candidates) if options.reranker else k
    hits = store.search(collection, vector, fetch, filters, mode=options.mode, sparse=sparse, fusion=options.fusion)
    if options.reranker is None:
        return hits
    return options.reranker.rerank(question, hits)[:k]


_QUERY_VECTORS: dict[tuple[str, str], np.ndarray] = {}
_QUERY_VECTORS_MAX = 8192
_QUERY_VECTORS_LOCK = threading.Lock()


def query_vector(embedder: Embedder, question: str) -> np.ndarray:
    """The question's dense vector, cached per embedder name: evaluations ask every question in
    several modes, and embedding is the slow part of a query on CPU."""
    key = (embedder.name, question)
    vector = _QUERY_VECTORS.get(key)
    if vector is None:
        vector = np.asarray(embedder.embed_query(question), dtype=np.float32)
        vector.setflags(write=False)
        with _QUERY_VECTORS_LOCK:
            if len(_QUERY_VECTORS) >= _QUERY_VECTORS_MAX:
                _QUERY_VECTORS.pop(next(iter(_QUERY_VECTORS)))
            _QUERY_VECTORS[key] = vector
    return vector


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder scoring (question, chunk) pairs; higher is better."""

    def __init__(self, model_ref: str, batch_size: int = 32):
        from sentence_transformers import CrossEncoder

        from ragline.models.refs import resolve_model

        location = resolve_model(model_ref)
        self.model = CrossEncoder(str(location.path) if location.local else location.hub_id)
        self.name = f"cross-encoder:{model_ref}"
        self.batch_size = batch_size

    def rerank(self, question: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return []
        pairs = [(question, hit.payload.get("text", "")) for hit in hits]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        ranked = sorted(
            zip(hits, np.asarray(scores, dtype=np.float64).reshape(len(hits), -1)[:, -1], strict=True),
            key=lambda pair: -pair[1],
        )
        return [Hit(hit.chunk_id, float(score), hit.payload) for hit, score in ranked]


@functools.lru_cache(maxsize=2)
def load_reranker(model_ref: str) -> Reranker:
    """One loaded cross-encoder per process; a missing model names the setting to fix."""
    try:
        return CrossEncoderReranker(model_ref)
    except (OSError, FileNotFoundError) as exc:
        raise FileNotFoundError(
            f"cannot load the reranker {model_ref!r} ({exc}): set retrieval.rerank_model to a local "
            "CrossEncoder folder or an installed model package, or unset it to skip reranking"
        ) from exc
