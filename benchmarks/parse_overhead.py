"""What parsing in worker processes (ragline.parsing.pool) costs against parsing in-process.

    .venv/bin/python benchmarks/parse_overhead.py                  # ../shared/data/docs
    .venv/bin/python benchmarks/parse_overhead.py --folder DOCS --workers 2

Both sides parse and chunk the same files one after the other with the same code
(ragline.parsing.worker.parse_one); start-up (importing unstructured and the spaCy model, in this
process or in the pool's forkserver) is timed apart from the per-file work. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(REPO_ROOT.parent / "shared" / "data" / "docs"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    from ragline.ingestion.discovery import discover
    from ragline.parsing.options import ParseOptions
    from ragline.parsing.pool import ParserPool

    files = discover(args.folder, ["**/*"], ["**/.*"], 64.0).files
    options = ParseOptions()

    started = time.perf_counter()
    pool = ParserPool(options, args.workers)
    pool.parse(files[0], args.timeout)  # starts the forkserver (warm imports) and one worker
    pool_startup = time.perf_counter() - started
    started = time.perf_counter()
    pooled = [pool.parse(f, args.timeout).report.status for f in files]
    pool_s = time.perf_counter() - started
    pool.close()

    started = time.perf_counter()
    from ragline.parsing import worker as parse_worker  # importing it warms unstructured + spaCy, as in the forkserver

    inline_startup = time.perf_counter() - started
    started = time.perf_counter()
    inline = [parse_worker.parse_one(f, options).report.status for f in files]
    inline_s = time.perf_counter() - started

    print(
        json.dumps(
            {
                "files": len(files),
                "same_outcomes": pooled == inline,
                "in_process": {"startup_s": round(inline_startup, 2), "parse_s": round(inline_s, 2)},
                "worker_pool": {
                    "workers": args.workers,
                    "startup_s": round(pool_startup, 2),
                    "parse_s": round(pool_s, 2),
                },
                "overhead_pct": round(100 * (pool_s - inline_s) / inline_s, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
