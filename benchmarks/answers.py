"""Answer benchmark: accuracy, citations, support and latency of each answer mode.

    .venv/bin/python benchmarks/answers.py                          # SQuAD corpus + bundled 20-question sample
    .venv/bin/python benchmarks/answers.py --qa benchmarks/data/squad-qa-37.jsonl --modes extractive

The corpus (a BEIR folder) is ingested through the real ingest flow (not timed); each question is
retrieved once (hybrid, k = retrieval.k) and answered from the same passages in every mode:

- `extractive`: the passages' best sentences, cited, no generation (answer.mode = extractive);
- `generate`: grounded generation, the best sentences up to generation.context_tokens, fenced;
- `whole-chunks`: the earlier path (whole chunks in the prompt, every passage returned as a
  citation), the baseline the targets are set against, measured in the same run.

Per mode: answer contains a reference answer (SQuAD normalization), citation precision (cited
passages that hold a reference answer), unsupported-sentence rate (sentences ragline.grounding
marks unsupported; for `whole-chunks` the same check is run after the fact), prompt tokens, time
to first token and answer latency p50 (answer only; retrieval is common to all modes).
The shared SQuAD copy has no answers (CS224N removed them): the bundled sample's 20 references and
`benchmarks/data/squad-qa-37.jsonl` (those 20 plus 17 more, written by hand from the gold passages
of randomly drawn answerable questions; every reference is a span of its passage) are the QA
files with references for it. Any JSONL/SQuAD QA file works with --qa.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

COLLECTION = "bench-answers"
MODES = ("extractive", "generate", "whole-chunks")


def load_items(args):
    from ragline.evaluation.metrics import load_beir, load_qa
    from ragline.evaluation.qa_sample import SQUAD_QA_SAMPLE

    dataset = load_beir(args.corpus)
    items = load_qa(args.qa) if args.qa else list(SQUAD_QA_SAMPLE)
    items = [item for item in items if set(item.gold) & set(dataset.corpus)]
    return dataset, items[: args.limit] if args.limit else items


def answer_once(mode: str, question: str, hits, settings, embedder, generator):
    from ragline import answering

    started = time.perf_counter()
    if mode == "whole-chunks":
        answer = answering.generate_answer(question, hits, generator, settings)
    else:
        mode_settings = settings.model_copy(update={"answer": settings.answer.model_copy(update={"mode": mode})})
        answer = answering.answer_question(question, hits, mode_settings, embedder, lambda: generator)
    return answer, time.perf_counter() - started


def score(answer, references: list[str], question: str, embedder) -> dict:
    from ragline.evaluation.metrics import contains_reference
    from ragline.grounding import ground
    from ragline.support import SupportScorer

    sentences = answer.sentences
    if answer.mode == "whole-chunks":  # unchecked by design: check it here, for the table only
        sentences = ground(answer.answer, answer.citations, SupportScorer(embedder, question)).sentences
    holding = [c for c in answer.citations if contains_reference(c.text, references)]
    return {
        "contains": contains_reference(answer.answer, references),
        "cited": len(answer.citations),
        "cited_holding": len(holding),
        "sentences": len(sentences),
        "unsupported": sum(not s.supported for s in sentences),
        "fallback": answer.mode == "extractive-fallback",
    }


def measure(args, settings, items) -> dict:
    from ragline import answering, backends
    from ragline.embedders import get_embedder
    from ragline.generators import get_generator
    from ragline.retrieval import retrieval_options
    from ragline.store import open_store

    embedder = get_embedder(backends.embedder_spec(settings))
    generator = get_generator(backends.generator_spec(settings))
    store, options = open_store(settings), retrieval_options(settings)
    generator.warm_up()
    rows: dict[str, list[dict]] = {mode: [] for mode in args.modes}
    for i, item in enumerate(items):
        hits = answering.retrieve(item.question, settings.retrieval.k, None, embedder, store, COLLECTION, options)
        # Alternate the order so drift in the machine's load hits every mode alike.
        order = args.modes if i % 2 == 0 else list(reversed(args.modes))
        for mode in order:
            answer, seconds = answer_once(mode, item.question, hits, settings, embedder, generator)
            row = score(answer, item.answers, item.question, embedder)
            first = answer.timings.get("first_token_s", seconds) if mode != "extractive" else seconds
            row.update(seconds=seconds, first_token_s=first, prompt_tokens=answer.prompt_tokens or 0)
            row.update(question=item.question, answer=answer.answer)
            rows[mode].append(row)
    return {mode: summarize(mode_rows) for mode, mode_rows in rows.items()} | {"answers": rows}


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    cited = sum(r["cited"] for r in rows)
    sentences = sum(r["sentences"] for r in rows)
    return {
        "questions": n,
        "contains_reference": round(sum(r["contains"] for r in rows) / n, 3),
        "citation_precision": round(sum(r["cited_holding"] for r in rows) / cited, 3) if cited else 0.0,
        "unsupported_rate": round(sum(r["unsupported"] for r in rows) / sentences, 3) if sentences else 0.0,
        "fallback_rate": round(sum(r["fallback"] for r in rows) / n, 3),
        "prompt_tokens_p50": common.percentile([r["prompt_tokens"] for r in rows], 50),
        "first_token_p50_s": round(common.percentile([r["first_token_s"] for r in rows], 50), 3),
        "latency_p50_s": round(common.percentile([r["seconds"] for r in rows], 50), 3),
    }


def run(args, workdir: Path) -> dict:
    os.environ["RAGLINE_DATA_DIR"] = str(workdir / "data")
    from ragline.evaluation.metrics import write_documents
    from ragline.flows.ingest import ingest
    from ragline.settings import get_settings

    dataset, items = load_items(args)
    corpus = workdir / "corpus"
    write_documents(dataset, corpus)
    summary = ingest(path=str(corpus), collection=COLLECTION)
    settings = get_settings()
    return {"dataset": dataset.name, "docs": len(dataset.corpus), "chunks": summary["chunks"]} | measure(
        args, settings, items
    )


def record(result: dict) -> None:
    r, m = result["runs"], result["machine"]
    for mode in result["config"]["modes"]:
        s = r[mode]
        common.append_row(
            "answer-runs",
            [
                "date",
                "commit",
                "machine",
                "command",
                "questions",
                "mode",
                "contains ref",
                "citation precision",
                "unsupported",
                "prompt tokens p50",
                "first token p50 s",
                "latency p50 s",
            ],  # fmt: skip
            [
                result["date"],
                result["commit"],
                f"{m['cores']} cores {m['cpu']}, load {m['load_avg_1m']}",
                f"`{result['command']}`",
                f"{s['questions']} ({r['dataset']}, {r['docs']} docs)",
                mode,
                f"{s['contains_reference']:.0%}",
                f"{s['citation_precision']:.0%}",
                f"{s['unsupported_rate']:.0%}",
                str(s["prompt_tokens_p50"]),
                f"{s['first_token_p50_s']:.2f}",
                f"{s['latency_p50_s']:.2f}",
            ],
        )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=common.SQUAD_DIR, help="BEIR corpus folder")
    p.add_argument("--qa", type=Path, help="QA file (JSONL or SQuAD JSON); default: the bundled SQuAD sample")
    p.add_argument("--limit", type=int, help="first N questions only")
    p.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES), help=f"of {','.join(MODES)}")
    p.add_argument("--no-record", dest="record", action="store_false", help="do not add rows to BENCHMARKS.md")
    p.add_argument("--out", type=Path, help="result JSON path (default benchmarks/results/answers-<time>.json)")
    p.add_argument("--workdir", type=Path, help="keep the corpus and store here (a re-run skips the ingest)")
    args = p.parse_args(argv)
    unknown = set(args.modes) - set(MODES)
    if unknown:
        p.error(f"unknown modes {sorted(unknown)}: use {', '.join(MODES)}")
    return args


def main(argv=None) -> dict:
    common.quiet_environment()
    args = parse_args(argv)
    runs = common.run_with_prefect(lambda args, workdir, env: run(args, workdir), args, in_process=True)
    result = {
        **common.result_header("answers", ["ragline", "llama_cpp_python", "prefect"]),
        "config": {"modes": args.modes, "limit": args.limit, "qa": str(args.qa or "bundled SQuAD sample")},
        "runs": runs,
    }
    path = common.save_result("answers", result, args.out)
    if args.record:
        record(result)
    import json

    print(json.dumps({"result": str(path), **{m: runs[m] for m in args.modes}}, indent=2))
    return result


if __name__ == "__main__":
    main()
