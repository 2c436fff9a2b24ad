"""Measure model backends on this machine: load time, throughput, peak memory, quality.

Each backend is measured in a fresh subprocess (`python -m ragline.evaluation.model_bench ...`), so its peak
resident memory is its own and a backend that crashes or lacks its packages cannot take the
others down. Quality comes from the evaluation code: nDCG@10 of the backend on a small BEIR
sample for embedders, and for generators the fraction of answers that contain a reference answer
when the generator is handed the gold passage (the prompt `ragline ask` builds), which measures
the generator alone, independent of retrieval.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace

from ragline import backends
from ragline.embedders import EmbedderSpec, get_embedder
from ragline.generators import get_generator
from ragline.models import backend_table
from ragline.settings import RaglineSettings

SKIPPED_EXIT = 3  # the worker's exit code when the backend's packages are missing

ROLES = {"embedder": "embedding", "generator": "instruct"}


def profile(kind: str, backend: str) -> tuple[str, str, str, str]:
    """The descriptive columns (model type, strengths, weaknesses, best use) from the backend table."""
    entry = backend_table.lookup(ROLES[kind], backend)
    if entry is None or entry.profile is None:
        return ("-", "-", "-", "-")
    p = entry.profile
    return (p.model_type, p.strengths, p.weaknesses, p.best_use)


def peak_rss_mb(platform: str = sys.platform) -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS;
    Windows has no `resource` module: psutil's peak working set there)."""
    try:
        import resource
    except ImportError:
        try:
            import psutil

            return getattr(psutil.Process().memory_info(), "peak_wset", 0) / 2**20
        except ImportError:
            return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform == "darwin" else peak / 1024


@dataclass
class WorkerResult:
    kind: str
    backend: str
    status: str  # "measured", "skipped" or "failed"
    metrics: dict
    reason: str = ""


def run_worker(kind: str, backend: str, arguments: list[str], timeout_s: float = 900) -> WorkerResult:
    """Measure one backend in a subprocess; its last stdout line is the JSON result."""
    command = [sys.executable, "-m", "ragline.evaluation.model_bench", kind, backend, *arguments]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return WorkerResult(kind, backend, "failed", {}, f"timed out after {timeout_s:.0f} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode == SKIPPED_EXIT:
        return WorkerResult(kind, backend, "skipped", {}, lines[-1] if lines else "dependencies missing")
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return WorkerResult(kind, backend, "failed", {}, f"exit {done.returncode}: {tail[:300]}")
    return WorkerResult(kind, backend, "measured", json.loads(lines[-1]))


# -- inside the worker process ------------------------------------------------------------------


def measure_embedder(backend: str, settings: RaglineSettings, texts: list[str], budget_s: float) -> dict:
    """Passages/s over `texts`, or over the model batches that fit in `budget_s` (slow backends)."""
    spec = replace(backends.embedder_spec(settings), backend=backend)
    started = time.perf_counter()
    spec = with_loadable_model(spec)
    embedder = get_embedder(spec)
    embedder.warm_up()
    embedder.embed_documents(texts[:2])  # first call pays one-time setup; count it as loading
    load_s = time.perf_counter() - started
    # Steps sized from the measured speed: a slow backend stops near its budget, and a fast one gets
    # calls big enough to use every core (int8 ONNX runs model batches side by side).
    step, done = 8, 0
    started = time.perf_counter()
    while done < len(texts) and (done == 0 or time.perf_counter() - started < budget_s):
        step_started = time.perf_counter()
        embedded = len(embedder.embed_documents(texts[done : done + step]))
        done += embedded
        rate = embedded / max(time.perf_counter() - step_started, 1e-6)
        step = max(8, min(256, int(rate * budget_s / 10)))
    seconds = time.perf_counter() - started
    return {
        "model": embedder.name,
        "load_s": round(load_s, 2),
        "throughput": round(done / seconds, 2),
        "unit": "passages/s",
        "measured_on": done,
        "peak_rss_mb": round(peak_rss_mb()),
        "model_ref": spec.model,
    }


def with_loadable_model(spec: EmbedderSpec) -> EmbedderSpec:
    """GGUF needs a .gguf file: a local sentence-transformers model is converted once (cached), and
    the conversion time counts as loading, as it would for a user doing the same."""
    from ragline.models.refs import resolve_model

    location = resolve_model(spec.model)
    if spec.backend == "gguf" and location.local and location.path.suffix != ".gguf":
        from ragline.embedders.gguf_convert import cached_gguf

        return replace(spec, model=str(cached_gguf(spec.model)))
    return spec


def measure_generator(
    backend: str, settings: RaglineSettings, items, corpus: dict[str, tuple[str, str]], budget_s: float
) -> dict:
    """Tokens/s and answer-contains-reference over the questions answered within `budget_s`."""
    from ragline import answering
    from ragline.evaluation.metrics import contains_reference
    from ragline.records import Hit

    spec = replace(backends.generator_spec(settings), backend=backend)
    started = time.perf_counter()
    generator = get_generator(spec)
    generator.warm_up()
    load_s = time.perf_counter() - started
    tokens = seconds = correct = answered = 0
    for item in items:
        if answered and seconds > budget_s:
            break
        title, text = corpus[item.gold[0]]
        hit = Hit(item.gold[0], 1.0, {"source": item.gold[0], "page": None, "text": f"{title}\n{text}"})
        started = time.perf_counter()
        answer = answering.generate_answer(item.question, [hit], generator, settings)
        seconds += time.perf_counter() - started
        tokens += generator.count_tokens(answer.answer)
        correct += contains_reference(answer.answer, item.answers)
        answered += 1
    if not answered:
        raise ValueError("no QA question has its gold passage in this dataset: pass a QA file that matches it")
    return {
        "model": generator.name,
        "load_s": round(load_s, 2),
        "throughput": round(tokens / seconds, 2),
        "unit": "tokens/s",
        "measured_on": answered,
        "peak_rss_mb": round(peak_rss_mb()),
        "answer_contains_reference": round(correct / answered, 4),
        "questions": answered,
    }


def worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ragline.evaluation.model_bench")
    parser.add_argument("kind", choices=["embedder", "generator"])
    parser.add_argument("backend")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--budget-s", type=float, default=120.0, help="stop measuring after this long")
    args = parser.parse_args(argv)

    from ragline.embedders import MissingDependencyError
    from ragline.embedders.base import ModelFormatError
    from ragline.evaluation.metrics import load_beir
    from ragline.settings import get_settings

    settings = get_settings()
    section_name = "embedding" if args.kind == "embedder" else "generation"
    entry = backend_table.lookup(ROLES[args.kind], args.backend)
    if entry is not None and "api" in entry.formats and not getattr(settings, section_name).api_base:
        print(f"{args.backend}: no endpoint configured (set {section_name}.api_base to measure it)")
        return SKIPPED_EXIT
    dataset = load_beir(args.dataset)
    try:
        if args.kind == "embedder":
            texts = [f"{t}\n{x}" for t, x in list(dataset.corpus.values())[: args.docs]]
            result = measure_embedder(args.backend, settings, texts, args.budget_s)
        else:
            from ragline.evaluation.qa_sample import SQUAD_QA_SAMPLE

            items = [i for i in SQUAD_QA_SAMPLE if i.gold[0] in dataset.corpus][: args.questions]
            result = measure_generator(args.backend, settings, items, dataset.corpus, args.budget_s)
    except (MissingDependencyError, ImportError, ModelFormatError) as exc:
        print(f"{args.backend}: {exc}")
        return SKIPPED_EXIT
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
