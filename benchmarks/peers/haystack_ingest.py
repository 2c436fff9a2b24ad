"""A Haystack 2 indexing pipeline on the benchmark corpus: TextFileToDocument -> DocumentSplitter ->
SentenceTransformersDocumentEmbedder -> DocumentWriter(QdrantDocumentStore), with the same MiniLM
model and batch size as ragline and the chunk size converted from characters to words.

Run by benchmarks/ingest.py inside benchmarks/peers/.venv. The store is qdrant-client's in-memory
mode (":memory:"), the fastest qdrant-client mode and the peer-friendly choice: ragline writes to
qdrant-edge on disk. Model loading (warm_up) is excluded from `ingest_s`, reported as `startup_s`.
"""

from __future__ import annotations

import time
from pathlib import Path

from _shared import common, corpus_files, parse_args, write_result

# ragline chunks by characters; Haystack's DocumentSplitter counts words. English averages
# about six characters per word including the space, so 1,000 characters ~ 166 words.
CHARS_PER_WORD = 6


def build_pipeline(args, store):
    from haystack import Pipeline
    from haystack.components.converters import TextFileToDocument
    from haystack.components.embedders import SentenceTransformersDocumentEmbedder
    from haystack.components.preprocessors import DocumentSplitter
    from haystack.components.writers import DocumentWriter

    pipeline = Pipeline()
    pipeline.add_component("converter", TextFileToDocument())
    pipeline.add_component(
        "splitter",
        DocumentSplitter(
            split_by="word",
            split_length=args.chunk_chars // CHARS_PER_WORD,
            split_overlap=args.overlap_chars // CHARS_PER_WORD,
        ),
    )
    pipeline.add_component(
        "embedder",
        SentenceTransformersDocumentEmbedder(
            model=args.model,
            device=None,
            batch_size=args.batch_size,
            normalize_embeddings=True,
            progress_bar=False,
        ),
    )
    pipeline.add_component("writer", DocumentWriter(document_store=store))
    pipeline.connect("converter", "splitter")
    pipeline.connect("splitter", "embedder")
    pipeline.connect("embedder", "writer")
    return pipeline


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0])
    started = time.perf_counter()
    from haystack.components.embedders import SentenceTransformersTextEmbedder
    from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    store = QdrantDocumentStore(
        location=":memory:", index="bench", embedding_dim=384, similarity="cosine", recreate_index=True
    )
    pipeline = build_pipeline(args, store)
    pipeline.warm_up()
    startup_s = time.perf_counter() - started

    started = time.perf_counter()
    output = pipeline.run({"converter": {"sources": [str(p) for p in corpus_files(args.corpus)]}})
    ingest_s = time.perf_counter() - started
    rss = common.peak_rss_mb()

    retrieved = {}
    if args.queries_file:
        text_embedder = SentenceTransformersTextEmbedder(
            model=args.model, normalize_embeddings=True, progress_bar=False
        )
        text_embedder.warm_up()
        retriever = QdrantEmbeddingRetriever(document_store=store, top_k=args.top_k)
        for query in common.read_queries(args.queries_file):
            embedding = text_embedder.run(text=query["text"])["embedding"]
            documents = retriever.run(query_embedding=embedding)["documents"]
            retrieved[query["qid"]] = [Path(d.meta.get("file_path", "")).name for d in documents]
    write_result(
        args.result,
        {
            "system": "haystack",
            "docs": len(corpus_files(args.corpus)),
            "chunks": output["writer"]["documents_written"],
            "points": store.count_documents(),
            "startup_s": round(startup_s, 2),
            "ingest_s": round(ingest_s, 2),
            "store": "qdrant-client :memory:",
            "peak_rss_mb": rss,
            "retrieved": retrieved,
            "versions": common.versions(
                ["haystack-ai", "qdrant-haystack", "qdrant-client", "sentence-transformers", "torch"]
            ),
        },
    )


if __name__ == "__main__":
    main()
