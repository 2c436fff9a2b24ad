"""Helpers the benchmark scripts share: corpus, queries, recall, memory, results and BENCHMARKS.md.

Kept free of ragline and third-party imports so the peer scripts (which run in their own venv,
benchmarks/peers/.venv) can import it too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SQUAD_DIR = SHARED_DATA / "squad2-cs224n-test-retrieval"
SHARED_DOCS = SHARED_DATA / "docs"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
MANIFEST = "manifest.json"


# -- corpus -------------------------------------------------------------------------------------


def squad_passages(squad_dir: Path = SQUAD_DIR) -> list[dict]:
    path = squad_dir / "corpus.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} is missing: the benchmark needs the shared data next to the repo (../shared/data)")
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _sentence_rotation(text: str, shift: int) -> str:
    """The passage with its sentences rotated: same facts, different text (so no two files match)."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    shift %= max(1, len(sentences))
    return " ".join(sentences[shift:] + sentences[:shift])


def build_squad_corpus(out_dir: Path, n_docs: int, squad_dir: Path = SQUAD_DIR) -> dict[str, str]:
    """Write `n_docs` .txt files (title line + passage), cycling the 570 passages with variations.

    Copy r of a passage has its sentences rotated by r. Returns (and writes as manifest.json)
    file name -> SQuAD passage id, which recall@k maps retrieved files back through.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    passages = squad_passages(squad_dir)
    manifest: dict[str, str] = {}
    for i in range(n_docs):
        passage = passages[i % len(passages)]
        copy = i // len(passages)
        name = f"d{i:05d}.txt"
        text = _sentence_rotation(passage["text"], copy)
        (out_dir / name).write_text(f"{passage['title']}\n\n{text}\n", encoding="utf-8")
        manifest[name] = passage["_id"]
    (out_dir.parent / f"{out_dir.name}.{MANIFEST}").write_text(json.dumps(manifest))
    return manifest


def load_manifest(corpus_dir: Path) -> dict[str, str]:
    path = corpus_dir.parent / f"{corpus_dir.name}.{MANIFEST}"
    return json.loads(path.read_text()) if path.exists() else {}


@dataclass
class Query:
    qid: str
    text: str
    relevant: set[str]


def load_queries(n: int, passage_ids: set[str], squad_dir: Path = SQUAD_DIR, seed: int = 6) -> list[Query]:
    """A fixed random sample of `n` queries whose relevant passages are all in the corpus."""
    relevant: dict[str, set[str]] = {}
    with (squad_dir / "qrels" / "test.tsv").open() as handle:
        next(handle)
        for line in handle:
            qid, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                relevant.setdefault(qid, set()).add(doc_id)
    queries = []
    with (squad_dir / "queries.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            wanted = relevant.get(row["_id"])
            if wanted and wanted <= passage_ids:
                queries.append(Query(row["_id"], row["text"], wanted))
    random.Random(seed).shuffle(queries)
    return queries[:n]


def write_queries(path: Path, queries: list[Query]) -> None:
    path.write_text(json.dumps([{"qid": q.qid, "text": q.text} for q in queries]))


def read_queries(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text())


def recall_at_k(retrieved: dict[str, list[str]], queries: list[Query], manifest: dict[str, str], k: int = 10) -> float:
    """Mean share of each query's relevant passages found among its top-k files (any copy counts)."""
    if not queries:
        return 0.0
    total = 0.0
    for query in queries:
        found = {manifest.get(Path(name).name) for name in retrieved.get(query.qid, [])[:k]}
        total += len(query.relevant & found) / len(query.relevant)
    return round(total / len(queries), 4)


# -- measurement --------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class TreeRssSampler:
    """Peak memory of this process plus its children (e.g. ragline's parser processes), sampled
    every `interval_s` in a thread; falls back to this process's own peak RSS without psutil.

    `peak_mb` sums PSS (proportional set size): forked parser processes share most of their pages
    with the process they were forked from, which an RSS sum counts once per process.
    `peak_rss_sum_mb` is that RSS sum, for comparison."""

    def __init__(self, interval_s: float = 0.2):
        import threading

        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.peak_rss_sum_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = round(self.peak_mb or peak_rss_mb(), 1)
        self.peak_rss_sum_mb = round(self.peak_rss_sum_mb, 1)

    def _run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.wait(self.interval_s):
            pss = rss = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    memory = process.memory_full_info()
                except psutil.Error:
                    continue
                pss += getattr(memory, "pss", memory.rss)
                rss += memory.rss
            self.peak_mb = max(self.peak_mb, pss / 2**20)
            self.peak_rss_sum_mb = max(self.peak_rss_sum_mb, rss / 2**20)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def versions(packages: list[str]) -> dict[str, str]:
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
    }


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def command_line() -> str:
    args = [
        Path(sys.argv[0]).resolve().relative_to(REPO_ROOT).as_posix() if Path(sys.argv[0]).exists() else sys.argv[0]
    ]
    return "python " + shlex.join(args + sys.argv[1:])


def run_worker(argv: list[str], env: dict | None = None, timeout: float | None = None) -> dict:
    """Run one measured step in its own process (clean peak RSS) and return the JSON it writes."""
    result_path = Path(argv[argv.index("--result") + 1])
    result_path.unlink(missing_ok=True)
    proc = subprocess.run(
        argv, env={**os.environ, **(env or {})}, timeout=timeout, cwd=REPO_ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0 or not result_path.exists():
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"benchmark step failed ({shlex.join(argv[:3])} ...), exit {proc.returncode}:\n{tail}")
    return json.loads(result_path.read_text())


# -- results ------------------------------------------------------------------------------------


# The environment every benchmark process runs with: offline models, no progress bars, quiet Prefect.
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def quiet_environment() -> None:
    os.environ.update({k: v for k, v in QUIET_ENV.items() if k not in os.environ})


def start_prefect(workdir: Path) -> tuple[dict, object]:
    """A Prefect API for the workers: PREFECT_API_URL when set, else a throwaway local server."""
    if os.environ.get("PREFECT_API_URL"):
        return {"PREFECT_API_URL": os.environ["PREFECT_API_URL"]}, None
    import socket

    from ragline.deployments.local_server import local_api_url, start_local_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = start_local_server(workdir / "prefect", port, timeout_s=300)
    return {"PREFECT_API_URL": local_api_url(port)}, process


def run_with_prefect(measure, args, in_process: bool = False) -> dict:
    """`measure(args, workdir, env)` in `args.workdir` (or a temp dir) with a Prefect API; a
    server started for it is stopped afterwards, and with `in_process` (the flows run in this
    process) this process points at it and closes its embedded store at the end."""
    with tempfile.TemporaryDirectory(prefix="ragline-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        env, server = start_prefect(workdir)
        if in_process:
            os.environ.update(env)
        try:
            return measure(args, workdir, env)
        finally:
            if in_process:
                from ragline.store import close_stores

                close_stores()
            if server is not None:
                os.killpg(server.pid, 15)
                server.wait(timeout=30)


def result_header(benchmark: str, packages: list[str]) -> dict:
    """The fields every result JSON starts with: what ran, when, where, with which versions."""
    return {
        "benchmark": benchmark,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": git_commit(),
        "command": command_line(),
        "machine": machine(),
        "versions": versions(packages),
    }


def save_result(name: str, result: dict, out: Path | None = None) -> Path:
    path = out or RESULTS_DIR / f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


def append_row(marker: str, header: list[str], row: list[str], path: Path = BENCHMARKS_MD) -> None:
    """Insert a table row just above `<!-- marker -->` in BENCHMARKS.md (made if missing)."""
    tag = f"<!-- {marker} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    line = "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |\n"
    if tag not in text:
        table = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
        text = text.rstrip("\n") + f"\n\n### Run log ({marker})\n\n{table}{tag}\n"
    before, after = text.split(tag, 1)
    path.write_text(before + line + tag + after)


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
