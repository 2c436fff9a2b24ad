"""Where an ingest of a mixed corpus spends its time: per file format and per stage.

    .venv/bin/python benchmarks/breakdown.py                                # ../shared/data/docs
    .venv/bin/python benchmarks/breakdown.py --skip book-war-and-peace-1225p.txt
    .venv/bin/python benchmarks/breakdown.py --folder DIR --top 10

Calls ragline's library functions directly, one stage after the other in this one process, so
each stage's time is its whole CPU cost on this machine (the flow overlaps parsing with
embedding on separate processes; on 2 cores the sum is what both share):

- partition: ragline.parsing.partition.partition_file (unstructured, ingest.strategy);
- chunk: ragline.parsing.chunking.chunk_elements (chunk_by_title with ragline's settings);
- embed: the configured embedder's embed_documents, all chunks of one format in one call;
- sparse: the BM25 vectors stored with every chunk (ragline.sparse.sparse_documents);
- upsert: store.upsert into a throwaway collection of the configured store kind.

Start-up (unstructured + spaCy imports, model load) is timed apart. Prints a table per format,
the stage totals and the slowest files, and saves JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
STAGES = ("partition", "chunk", "embed", "sparse", "upsert")


def parse_stage(files, options) -> tuple[dict, list]:
    """Partition and chunk each file; per-file seconds for both stages and its chunks."""
    from ragline.parsing.chunking import chunk_elements
    from ragline.parsing.partition import ParseError, partition_file

    rows, chunks_by_file = [], []
    o = options
    for source_file in files:
        started = time.perf_counter()
        row = {"source": source_file.source, "format": source_file.file_type, "bytes": source_file.size}
        try:
            elements = partition_file(
                source_file.path, options.strategy, options.spacy_model, options.sentence_splitter
            )
        except ParseError as exc:
            rows.append(
                {**row, "partition": time.perf_counter() - started, "chunk": 0.0, "chunks": 0, "error": str(exc)}
            )
            chunks_by_file.append([])
            continue
        partitioned = time.perf_counter()
        chunks = chunk_elements(
            elements, source_file, o.max_characters, o.new_after_n_chars, o.overlap, o.combine_text_under_n_chars
        )
        rows.append(
            {
                **row,
                "partition": partitioned - started,
                "chunk": time.perf_counter() - partitioned,
                "chunks": len(chunks),
                "elements": len(elements),
            }
        )
        chunks_by_file.append(chunks)
    return rows, chunks_by_file


def index_stage(rows, chunks_by_file, embedder, store, collection: str, root: str, sample: int = 0) -> dict:
    """Embed, BM25 and upsert each format's chunks in one call per stage; seconds per format.

    With `sample`, a format with more chunks indexes an evenly spaced `sample` of them and its
    seconds are scaled by chunks / sample (marked `extrapolated`): bounded run time on a big book."""
    from ragline.sparse import sparse_documents

    by_format = defaultdict(list)
    for row, chunks in zip(rows, chunks_by_file, strict=True):
        by_format[row["format"]].extend(chunks)
    seconds = {}
    for file_type, chunks in by_format.items():
        if not chunks:
            continue
        scale = 1.0
        if sample and len(chunks) > sample:
            scale = len(chunks) / sample
            chunks = [chunks[int(i * scale)] for i in range(sample)]
        texts = [chunk.text for chunk in chunks]
        t0 = time.perf_counter()
        vectors = embedder.embed_documents(texts)
        t1 = time.perf_counter()
        sparse = sparse_documents(texts)
        t2 = time.perf_counter()
        store.upsert(collection, chunks, vectors, root, sparse=sparse)
        t3 = time.perf_counter()
        seconds[file_type] = {
            "embed": (t1 - t0) * scale,
            "sparse": (t2 - t1) * scale,
            "upsert": (t3 - t2) * scale,
            "tokens": round(sum(len(e.ids) for e in _encodings(embedder, texts)) * scale),
            "extrapolated": scale > 1,
        }
    return seconds


def _encodings(embedder, texts):
    tokenizer = getattr(embedder, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "encode_batch"):
        return []
    tokenizer.no_padding()
    try:
        return tokenizer.encode_batch(texts)
    finally:
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)


def table(rows, index_seconds) -> list[dict]:
    formats = defaultdict(
        lambda: {"files": 0, "failed": 0, "chunks": 0, "tokens": 0, "extrapolated": False, **dict.fromkeys(STAGES, 0.0)}
    )
    for row in rows:
        f = formats[row["format"]]
        f["files"] += 1
        f["failed"] += "error" in row
        f["chunks"] += row["chunks"]
        f["partition"] += row["partition"]
        f["chunk"] += row["chunk"]
    for file_type, seconds in index_seconds.items():
        for stage in ("embed", "sparse", "upsert", "tokens"):
            formats[file_type][stage] += seconds[stage]
        formats[file_type]["extrapolated"] = seconds["extrapolated"]
    out = []
    for file_type, f in formats.items():
        total = sum(f[stage] for stage in STAGES)
        out.append(
            {
                "format": file_type,
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in f.items()},
                "total": round(total, 3),
            }
        )
    return sorted(out, key=lambda r: -r["total"])


def print_table(by_format: list[dict], rows: list[dict], startup: dict, top: int) -> None:
    header = ["format", "files", "failed", "chunks", "tokens", *STAGES, "total", "share"]
    grand = sum(r["total"] for r in by_format) or 1.0
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in by_format:
        name = r["format"] + (" (embed/sparse/upsert extrapolated)" if r["extrapolated"] else "")
        cells = [name, r["files"], r["failed"], r["chunks"], r["tokens"], *(f"{r[s]:.2f}" for s in STAGES)]
        print("| " + " | ".join(map(str, cells)) + f" | {r['total']:.2f} | {100 * r['total'] / grand:.1f}% |")
    totals = {s: sum(r[s] for r in by_format) for s in STAGES}
    cells = ["**all**", sum(r["files"] for r in by_format), sum(r["failed"] for r in by_format)]
    cells += [sum(r["chunks"] for r in by_format), sum(r["tokens"] for r in by_format)]
    print("| " + " | ".join(map(str, cells + [f"{totals[s]:.2f}" for s in STAGES])) + f" | {grand:.2f} | 100% |")
    print("\nstage shares: " + ", ".join(f"{s} {100 * totals[s] / grand:.1f}%" for s in STAGES))
    print(f"start-up (not in the table): {startup}")
    print(f"\nslowest {top} files to partition + chunk:")
    for row in sorted(rows, key=lambda r: -(r["partition"] + r["chunk"]))[:top]:
        note = f" FAILED: {row['error'][:80]}" if "error" in row else ""
        seconds = f"{row['partition']:7.2f} s partition {row['chunk']:6.2f} s chunk"
        print(f"  {seconds} {row['chunks']:5d} chunks  {row['source']}{note}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", type=Path, default=common.SHARED_DOCS)
    p.add_argument("--skip", action="append", default=[], help="file name to leave out (repeatable)")
    p.add_argument("--top", type=int, default=8, help="slowest files listed")
    p.add_argument("--embed-sample", type=int, default=0, help="index at most N chunks per format, scale the time")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ragline-breakdown-"))
    os.environ["RAGLINE_DATA_DIR"] = str(workdir)

    from ragline import backends
    from ragline.embedders import get_embedder
    from ragline.ingestion import batches
    from ragline.ingestion.discovery import discover
    from ragline.parsing.partition import load_spacy_pipeline, prepare_unstructured
    from ragline.settings import get_settings
    from ragline.store import close_stores, collection_for, open_store

    settings = get_settings()
    options = batches.parse_options(settings)
    i = settings.ingest
    files = [
        f
        for f in discover(args.folder, i.include, i.exclude, i.max_file_mb).files
        if Path(f.path).name not in args.skip
    ]
    t0 = time.perf_counter()
    prepare_unstructured(options.spacy_model, options.sentence_splitter)
    load_spacy_pipeline(options.spacy_model)
    t1 = time.perf_counter()
    embedder = get_embedder(backends.embedder_spec(settings))
    embedder.warm_up()
    startup = {"unstructured_s": round(t1 - t0, 2), "embedder_s": round(time.perf_counter() - t1, 2)}

    rows, chunks_by_file = parse_stage(files, options)
    store = open_store(settings)
    store.ensure_collection(collection_for(embedder, "breakdown"))
    index_seconds = index_stage(rows, chunks_by_file, embedder, store, "breakdown", str(args.folder), args.embed_sample)
    close_stores()
    shutil.rmtree(workdir, ignore_errors=True)
    by_format = table(rows, index_seconds)
    print_table(by_format, rows, startup, args.top)
    result = {
        "benchmark": "breakdown",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": common.git_commit(),
        "command": common.command_line(),
        "machine": common.machine(),
        "embedder": embedder.name,
        "skipped": args.skip,
        "embed_sample": args.embed_sample,
        "startup": startup,
        "by_format": by_format,
        "files": [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in rows],
    }
    print(f"\nresult: {common.save_result('breakdown', result, args.out)}")


if __name__ == "__main__":
    main()
