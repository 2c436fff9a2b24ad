"""The unavoidable work of an ingest on this machine: raw partition of the files + raw encode of the
chunks, each run alone. Used by benchmarks/ingest.py; also runnable on its own:

    .venv/bin/python benchmarks/limit.py --folder ../shared/data/docs     # partition-only, JSON

ingest.py divides (partition_s + encode_s) by the flow's ingest time: a pipeline that partitions
cannot beat partitioning plus encoding run alone, one after the other, on the same cores (the flow
overlaps them, but on 2 cores both need the CPUs). It keeps encode_s alone as a second column.

Raw partition = `ragline.parsing.partition.partition_file` (unstructured's `partition`, with
ragline's strategy and sentence splitter), serially, in a fresh process so that no cache from the
flow's parser processes helps; start-up (imports, spaCy) is excluded by partitioning one file
before the clock starts. This module also builds a reduced mixed corpus (`subset_corpus`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def raw_partition(folder: str) -> dict:
    """Partition every file ragline would ingest, serially, in this (fresh) process."""
    from ragline.ingestion import batches
    from ragline.ingestion.discovery import discover
    from ragline.parsing.partition import ParseError, partition_file
    from ragline.settings import get_settings

    settings = get_settings()
    options = batches.parse_options(settings)
    i = settings.ingest
    files = discover(folder, i.include, i.exclude, i.max_file_mb).files
    args = (options.strategy, options.spacy_model, options.sentence_splitter)
    # A warm-up on a tiny text file of our own: imports and spaCy, not any corpus file's caches.
    warm = Path(os.environ.get("TMPDIR", "/tmp")) / f"ragline-limit-warm-{os.getpid()}.txt"
    warm.write_text("Warm up\n\nThis sentence loads the partitioner and the spaCy model.\n")
    try:
        partition_file(str(warm), *args)
    finally:
        warm.unlink(missing_ok=True)
    failed, elements = 0, 0
    started = time.perf_counter()
    for source_file in files:
        try:
            elements += len(partition_file(source_file.path, *args))
        except ParseError:
            failed += 1
    seconds = time.perf_counter() - started
    return {"files": len(files), "failed": failed, "elements": elements, "partition_s": round(seconds, 2)}


def measure_partition(folder: str | Path, env: dict | None = None) -> dict:
    """raw_partition in a fresh process (its own caches, its own peak RSS)."""
    argv = [sys.executable, __file__, "--folder", str(folder), "--json"]
    env = {**os.environ, **(env or {})}
    proc = subprocess.run(argv, env=env, cwd=common.REPO_ROOT, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"raw partition failed, exit {proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def subset_corpus(source: Path, target: Path, skip: list[str], max_kb: float | None) -> Path:
    """A copy of `source` without the files named in `skip` and without files over `max_kb`
    (the reduced mixed corpus; copied, not linked: discovery does not follow symlinks)."""
    if target.exists():
        shutil.rmtree(target)
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name in skip or (max_kb and path.stat().st_size > max_kb * 1024):
            continue
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out)
    return target


def record(result: dict) -> None:
    """A row in the issue-17 table: ingest against partition + encode, and against encode alone."""
    r, m, runs = result["ratios"], result["machine"], result["runs"]
    peer = runs.get("unstructured", {})
    common.append_row(
        "ingest-limit-runs",
        [
            "date",
            "commit",
            "machine",
            "command",
            "corpus",
            "docs",
            "chunks",
            "ingest s",
            "partition s + encode s",
            "ingest / (partition + encode)",
            "ingest / encode alone",
            "vs unstructured-ingest (docs/s)",
            "unstructured-ingest failed files",
        ],
        [
            result["date"],
            result["commit"],
            f"{m['cores']} cores, load {m['load_avg_1m']}",
            f"`{result['command']}`",
            result["config"]["corpus"],
            str(r["docs"]),
            str(runs["ragline"][next(iter(runs["ragline"]))]["chunks"]),
            common.fmt(r["ingest_s"], 1),
            f"{common.fmt(r['limit_s'], 1)} ({common.fmt(r['partition_vs_encode'])} partition/encode)",
            common.fmt(r["ingest_vs_partition_encode_limit"]),
            common.fmt(r["ingest_vs_limit"]),
            common.fmt(r.get("vs_unstructured")),
            str(peer.get("failed_files", "n/a")),
        ],
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", default=str(common.SHARED_DOCS))
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = raw_partition(args.folder)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
