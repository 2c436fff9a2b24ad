"""Query benchmark: retrieval and answer latency (p50/p95), and generation tokens/s through the
query flow against raw llama-cpp-python on the same prompt.

One command, from a clean clone (after `scripts/setup.sh`):

    .venv/bin/python benchmarks/query.py                  # 300 SQuAD docs, 50 retrievals, 5 answers
    .venv/bin/python benchmarks/query.py --answers 20 --max-tokens 256

The corpus is ingested through the real ingest flow first (not timed here; see ingest.py). Each
answer question runs once through the `ask` flow and once through a separate raw `llama_cpp.Llama`
with the same model, context, threads and prompt (the messages ragline builds from the same
hits), alternating which goes first so drift in the machine's load hits both alike. Tokens/s is
completion tokens over generation wall time (prompt evaluation included, the same for both);
for the flow that time is `total_s - retrieve_s`, i.e. including the generate task's overhead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

COLLECTION = "bench"


def latency_summary(seconds: list[float]) -> dict:
    return {
        "n": len(seconds),
        "p50_ms": round(common.percentile(seconds, 50) * 1000, 1),
        "p95_ms": round(common.percentile(seconds, 95) * 1000, 1),
    }


def measure_retrieval(queries: list[common.Query], settings) -> dict:
    """The library call the retrieve task makes: embed the question, search the store."""
    from ragline import answering, backends
    from ragline.embedders import get_embedder
    from ragline.retrieval import retrieval_options
    from ragline.store import SearchFilter, open_store

    embedder = get_embedder(backends.embedder_spec(settings))
    store = open_store(settings)
    options = retrieval_options(settings)
    seconds = []
    for query in queries:
        started = time.perf_counter()
        answering.retrieve(query.text, settings.retrieval.k, SearchFilter(), embedder, store, COLLECTION, options)
        seconds.append(time.perf_counter() - started)
    return latency_summary(seconds)


class RawLlama:
    """llama-cpp-python used directly, with the generator's own settings: the generation limit."""

    def __init__(self, settings):
        from llama_cpp import Llama

        from ragline.backends import generator_spec
        from ragline.generators.llama_cpp import _default_threads
        from ragline.models.refs import resolve_model

        spec = generator_spec(settings)  # `auto` settings (n_gpu_layers, threads) resolved as the generator does
        self.llm = Llama(
            model_path=str(resolve_model(spec.model).path),
            n_ctx=spec.context_window,
            n_threads=spec.threads or _default_threads(),
            n_gpu_layers=spec.n_gpu_layers,
            verbose=False,
        )

    def count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False))

    def answer(self, messages: list[dict], settings) -> tuple[float, int, str]:
        g = settings.generation
        started = time.perf_counter()
        out = self.llm.create_chat_completion(
            messages=messages, max_tokens=g.max_tokens, temperature=g.temperature, repeat_penalty=g.repeat_penalty
        )
        return time.perf_counter() - started, out["usage"]["completion_tokens"], out["choices"][0]["message"]["content"]


def prompt_for(question: str, settings):
    """The exact messages the generate task builds for this question (same hits, same budget)."""
    from ragline import answering, backends
    from ragline.embedders import get_embedder
    from ragline.generators import get_generator
    from ragline.prompting import build_messages, citations_from_hits
    from ragline.retrieval import retrieval_options
    from ragline.store import SearchFilter, open_store

    embedder = get_embedder(backends.embedder_spec(settings))
    hits = answering.retrieve(
        question,
        settings.retrieval.k,
        SearchFilter(),
        embedder,
        open_store(settings),
        COLLECTION,
        retrieval_options(settings),
    )
    generator = get_generator(backends.generator_spec(settings))
    budget = generator.context_window - settings.generation.max_tokens - 16
    messages, _ = build_messages(question, citations_from_hits(hits), generator.count_tokens, budget)
    return messages


def measure_answers(questions: list[common.Query], settings) -> dict:
    from ragline.flows.query import ask

    raw = RawLlama(settings)
    flow_s, flow_tokens, raw_s, raw_tokens, totals, retrieves, same = [], [], [], [], [], [], 0
    for i, query in enumerate(questions):
        order = ("flow", "raw") if i % 2 == 0 else ("raw", "flow")
        for which in order:
            if which == "flow":
                answer = ask(question=query.text, collection=COLLECTION)
                t = answer["timings"]
                flow_s.append(t["total_s"] - t["retrieve_s"])
                flow_tokens.append(raw.count(answer["answer"]))
                totals.append(t["total_s"])
                retrieves.append(t["retrieve_s"])
                flow_text = answer["answer"]
            else:
                seconds, tokens, raw_text = raw.answer(prompt_for(query.text, settings), settings)
                raw_s.append(seconds)
                raw_tokens.append(tokens)
        same += flow_text.strip() == raw_text.strip()
    flow_tps = sum(flow_tokens) / sum(flow_s)
    raw_tps = sum(raw_tokens) / sum(raw_s)
    return {
        "answers": len(questions),
        "identical_answers": same,
        "flow_tokens_per_s": round(flow_tps, 2),
        "raw_tokens_per_s": round(raw_tps, 2),
        "flow_vs_raw": round(flow_tps / raw_tps, 3),
        "flow_completion_tokens": sum(flow_tokens),
        "raw_completion_tokens": sum(raw_tokens),
        "answer_latency": latency_summary(totals),
        "flow_retrieve_latency": latency_summary(retrieves),
    }


def run(args, workdir: Path) -> dict:
    corpus = workdir / "corpus"
    manifest = common.build_squad_corpus(corpus, args.docs)
    queries = common.load_queries(max(args.queries, args.answers), set(manifest.values()))
    os.environ["RAGLINE_DATA_DIR"] = str(workdir / "data")
    os.environ["RAGLINE_GENERATION__MAX_TOKENS"] = str(args.max_tokens)
    from ragline.flows.ingest import ingest
    from ragline.settings import get_settings

    settings = get_settings()
    started = time.perf_counter()
    summary = ingest(path=str(corpus), collection=COLLECTION)
    ingest_s = time.perf_counter() - started
    measure_retrieval(queries[:3], settings)  # loads the embedder and opens the store
    return {
        "docs": args.docs,
        "chunks": summary["chunks"],
        "ingest_s": round(ingest_s, 2),
        "retrieval": measure_retrieval(queries[: args.queries], settings),
        "generation": measure_answers(queries[: args.answers], settings) if args.answers else None,
    }


def record(result: dict) -> None:
    r, m, v = result["runs"], result["machine"], result["versions"]
    g = r["generation"] or {}
    answer = g.get("answer_latency", {})
    common.append_row(
        "query-runs",
        [
            "date",
            "commit",
            "machine",
            "versions",
            "command",
            "docs",
            "retrieve p50/p95 ms",
            "flow retrieve p50/p95 ms",
            "answer p50/p95 s",
            "raw tok/s",
            "flow tok/s",
            "flow/raw",
        ],
        [
            result["date"],
            result["commit"],
            f"{m['cores']} cores {m['cpu']}, load {m['load_avg_1m']}",
            f"llama-cpp-python {v.get('llama_cpp_python')}, torch {v.get('torch')}",
            f"`{result['command']}`",
            str(r["docs"]),
            f"{r['retrieval']['p50_ms']} / {r['retrieval']['p95_ms']}",
            f"{g.get('flow_retrieve_latency', {}).get('p50_ms')} / {g.get('flow_retrieve_latency', {}).get('p95_ms')}",
            f"{answer.get('p50_ms', 0) / 1000:.2f} / {answer.get('p95_ms', 0) / 1000:.2f}",
            common.fmt(g.get("raw_tokens_per_s")),
            common.fmt(g.get("flow_tokens_per_s")),
            common.fmt(g.get("flow_vs_raw"), 3),
        ],
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=300, help="SQuAD documents to ingest first")
    p.add_argument("--queries", type=int, default=50, help="questions for retrieval latency")
    p.add_argument("--answers", type=int, default=5, help="questions answered through the flow and raw (0: skip)")
    p.add_argument("--max-tokens", type=int, default=128, help="generation.max_tokens for both")
    p.add_argument("--no-record", dest="record", action="store_false", help="do not add a row to BENCHMARKS.md")
    p.add_argument("--out", type=Path, help="result JSON path (default benchmarks/results/query-<time>.json)")
    p.add_argument("--workdir", type=Path, help="where the corpus and store go (default: a temp folder)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    common.quiet_environment()
    args = parse_args(argv)
    runs = common.run_with_prefect(lambda args, workdir, env: run(args, workdir), args, in_process=True)
    result = {
        **common.result_header("query", ["ragline", "llama_cpp_python", "torch", "sentence-transformers", "prefect"]),
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "workdir")},
        "runs": runs,
    }
    path = common.save_result("query", result, args.out)
    if args.record:
        record(result)
    import json

    print(json.dumps({"result": str(path), **{k: v for k, v in runs.items()}}, indent=2))
    return result


if __name__ == "__main__":
    main()
