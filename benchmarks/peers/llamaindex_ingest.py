"""LlamaIndex's IngestionPipeline on the benchmark corpus: SentenceSplitter + HuggingFaceEmbedding
+ QdrantVectorStore, with the same MiniLM model, batch size and chunk size (in characters) as ragline.

Run by benchmarks/ingest.py inside benchmarks/peers/.venv. The store is qdrant-client's in-memory
mode (":memory:"), the fastest qdrant-client mode and the peer-friendly choice: ragline writes to
qdrant-edge on disk. Model loading is excluded from `ingest_s` and reported as `startup_s`.
"""

from __future__ import annotations

import time

from _shared import common, corpus_files, parse_args, write_result


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0])
    started = time.perf_counter()
    import qdrant_client
    from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    embed = HuggingFaceEmbedding(
        model_name=args.model,
        embed_batch_size=args.batch_size,
        max_length=args.max_seq_length,
        normalize=True,
        device="cpu",
    )
    embed.get_text_embedding("warm-up")
    Settings.embed_model = embed
    client = qdrant_client.QdrantClient(location=":memory:")
    store = QdrantVectorStore(client=client, collection_name="bench")
    # A character "tokenizer" makes chunk_size mean characters, as ragline's max_characters does.
    splitter = SentenceSplitter(chunk_size=args.chunk_chars, chunk_overlap=args.overlap_chars, tokenizer=list)
    pipeline = IngestionPipeline(transformations=[splitter, embed], vector_store=store)
    startup_s = time.perf_counter() - started

    started = time.perf_counter()
    documents = SimpleDirectoryReader(input_files=[str(p) for p in corpus_files(args.corpus)]).load_data()
    nodes = pipeline.run(documents=documents)
    ingest_s = time.perf_counter() - started
    rss = common.peak_rss_mb()

    retrieved = {}
    if args.queries_file:
        retriever = VectorStoreIndex.from_vector_store(store, embed_model=embed).as_retriever(
            similarity_top_k=args.top_k
        )
        for query in common.read_queries(args.queries_file):
            hits = retriever.retrieve(query["text"])
            retrieved[query["qid"]] = [hit.node.metadata.get("file_name", "") for hit in hits]
    write_result(
        args.result,
        {
            "system": "llamaindex",
            "docs": len(documents),
            "chunks": len(nodes),
            "points": client.count("bench").count,
            "startup_s": round(startup_s, 2),
            "ingest_s": round(ingest_s, 2),
            "store": "qdrant-client :memory:",
            "peak_rss_mb": rss,
            "retrieved": retrieved,
            "versions": common.versions(
                [
                    "llama-index-core",
                    "llama-index-embeddings-huggingface",
                    "llama-index-vector-stores-qdrant",
                    "qdrant-client",
                    "sentence-transformers",
                    "torch",
                ]
            ),
        },
    )


if __name__ == "__main__":
    main()
