"""Retrieval sanity on the SQuAD-derived BEIR set with the default embedder and embedded store.

Measured 2026-11-28 on this project's 2-core machine: recall@5 = 0.8837 over all 5,915 queries
with the default embedder (auto -> int8 ONNX all-MiniLM-L6-v2). The floor below leaves room
for quantization and numeric noise, not for a broken pipeline.
"""

from __future__ import annotations

import numpy as np
import pytest

from ragline import backends
from ragline.embedders import get_embedder
from ragline.records import Chunk
from ragline.settings import get_settings
from ragline.store.base import CollectionInfo
from ragline.store.edge import EdgeStore
from tests.conftest import SQUAD_DIR, needs_shared_data

RECALL_AT_5_FLOOR = 0.85

pytestmark = [needs_shared_data(SQUAD_DIR), pytest.mark.slow]


def test_recall_at_5_on_squad_with_the_default_embedder(tmp_path, squad_vectors):
    """The passages go into the embedded store and the questions are answered by its search."""
    corpus, queries = squad_vectors.corpus, squad_vectors.queries
    qrels = {}
    for line in (SQUAD_DIR / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, _ = line.split("\t")
        qrels.setdefault(query_id, set()).add(doc_id)

    embedder = get_embedder(backends.embedder_spec(get_settings()))
    store = EdgeStore(tmp_path)
    store.ensure_collection(CollectionInfo("squad", embedder.name, embedder.dimensions))
    chunks = [
        Chunk(pipeline_chunk_id(i), doc["_id"], "h", 0, f"{doc['title']}\n{doc['text']}", "txt")
        for i, doc in enumerate(corpus)
    ]
    store.upsert("squad", chunks, squad_vectors.passages(embedder), root="squad")

    query_ids = [q for q in qrels if q in queries]
    vectors = squad_vectors.questions(embedder, query_ids)
    found = 0
    for query_id, vector in zip(query_ids, vectors, strict=True):
        hits = store.search("squad", np.asarray(vector), 5)
        found += any(hit.payload["source"] in qrels[query_id] for hit in hits)
    recall_at_5 = found / len(query_ids)
    print(f"recall@5 = {recall_at_5:.4f} over {len(query_ids)} queries")
    assert len(query_ids) > 5000
    assert recall_at_5 >= RECALL_AT_5_FLOOR
    store.close()


def pipeline_chunk_id(i: int) -> str:
    from ragline.parsing.chunking import chunk_id_for

    return chunk_id_for(f"doc-{i}", 0, "")
