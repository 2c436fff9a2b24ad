"""What the peer scripts share: arguments, the result file, and `common` from benchmarks/.

The peers run in benchmarks/peers/.venv (not ragline's), so this imports nothing from ragline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--corpus", required=True, help="folder of .txt documents")
    p.add_argument("--queries-file", help="JSON list of {qid, text} to retrieve for")
    p.add_argument("--model", required=True, help="sentence-transformers folder (ragline's bundled MiniLM)")
    p.add_argument("--chunk-chars", type=int, default=1000, help="ragline's chunking.max_characters")
    p.add_argument("--overlap-chars", type=int, default=100, help="ragline's chunking.overlap")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-seq-length", type=int, default=256)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--result", required=True, help="where to write the JSON result")
    p.add_argument("--processes", type=int, default=1, help="unstructured-ingest: its num_processes")
    return p.parse_args()


def corpus_files(corpus: str) -> list[Path]:
    return sorted(p for p in Path(corpus).iterdir() if p.is_file() and p.suffix == ".txt")


def write_result(path: str, result: dict) -> None:
    result.setdefault("peak_rss_mb", common.peak_rss_mb())
    Path(path).write_text(json.dumps(result))
