"""Ingestion benchmark: the limit (raw partition + raw encode, each alone) vs ragline's real ingest
flow vs LlamaIndex, Haystack and unstructured-ingest.

One command, from a clean clone (after `scripts/setup.sh`; the peers' venvs are made on first use):

    .venv/bin/python benchmarks/ingest.py                 # 1,000 SQuAD docs at 1x and 4x, with peers
    .venv/bin/python benchmarks/ingest.py --docs 5000     # bigger corpus
    .venv/bin/python benchmarks/ingest.py --corpus docs   # the parsing-heavy ../shared/data/docs
    .venv/bin/python benchmarks/ingest.py --corpus docs --max-kb 100 --peers unstructured  # reduced

The raw partition half of the limit is benchmarks/limit.py; LlamaIndex and Haystack split plain
text, so only unstructured-ingest runs on the mixed corpus.

Every measured step runs in its own process (so peak RSS is that step's own), one after the
other in one run, and the report compares them as ratios: the machine is shared and absolute
numbers are noisy. Model loading is excluded from every system's ingest time and reported
separately as `startup_s`. Results go to benchmarks/results/*.json and a row in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import limit as partition_limit  # noqa: E402
from ingest_worker import TOP_K  # noqa: E402

PEERS_DIR = common.REPO_ROOT / "benchmarks" / "peers"
PEERS = {
    "llamaindex": PEERS_DIR / "llamaindex_ingest.py",
    "haystack": PEERS_DIR / "haystack_ingest.py",
    "unstructured": PEERS_DIR / "unstructured_peer.py",
}
# unstructured-ingest pins its own unstructured and partitions every format: its own venv.
PEER_VENVS = {"unstructured": PEERS_DIR / ".venv-unstructured"}
PEER_SETUP = {"unstructured": PEERS_DIR / "setup_unstructured.sh"}
# Peers that only split plain text run on the SQuAD .txt files only.
TEXT_ONLY_PEERS = {"llamaindex", "haystack"}
WORKER = Path(__file__).resolve().parent / "ingest_worker.py"


# -- orchestration ------------------------------------------------------------------------------


def run_ragline(corpus: Path, workdir: Path, queries_file: Path | None, tag: str, env: dict, with_limit: bool) -> dict:
    result_path = workdir / f"ragline-{tag}.json"
    argv = [sys.executable, str(WORKER), "--corpus", str(corpus), "--result", str(result_path)]
    if queries_file:
        argv += ["--queries-file", str(queries_file)]
    if not with_limit:
        argv.append("--no-limit")
    data_env = {"RAGLINE_DATA_DIR": str(workdir / f"data-{tag}"), **env}
    run = common.run_worker(argv, env=data_env)
    if with_limit:
        # The other half of the redefined limit: raw partition of the same files, run alone.
        run["limit"].update(partition_limit.measure_partition(corpus, data_env))
    return run


def peer_python(name: str) -> Path:
    return PEER_VENVS.get(name, PEERS_DIR / ".venv") / "bin" / "python"


def ensure_peers_env(name: str) -> None:
    venv = PEER_VENVS.get(name, PEERS_DIR / ".venv")
    if not (venv / "bin" / "python").exists() or not (venv / ".peers-installed").exists():
        setup = PEER_SETUP.get(name, PEERS_DIR / "setup.sh")
        print(f"setting up the peers' venv ({setup.relative_to(common.REPO_ROOT)}) ...", file=sys.stderr)
        subprocess.run(["bash", str(setup)], check=True)


def run_peer(name: str, corpus: Path, workdir: Path, queries_file: Path, args) -> dict:
    from ragline.models.refs import resolve_model
    from ragline.settings import get_settings

    settings = get_settings()
    model = resolve_model(settings.embedding.model)
    result_path = workdir / f"{name}.json"
    argv = [
        str(peer_python(name)),
        str(PEERS[name]),
        "--corpus",
        str(corpus),
        "--queries-file",
        str(queries_file),
        "--model",
        str(model.path or model.hub_id),
        "--chunk-chars",
        str(settings.chunking.max_characters),
        "--overlap-chars",
        str(settings.chunking.overlap),
        "--batch-size",
        str(settings.embedding.batch_size),
        "--max-seq-length",
        str(settings.embedding.max_seq_length),
        "--top-k",
        str(TOP_K),
        "--result",
        str(result_path),
    ]
    if queries_file is None:
        argv = [a for a in argv if a not in ("--queries-file", "None")]
    return common.run_worker(argv, env=common.QUIET_ENV)


def measure(args, workdir: Path, env: dict) -> dict:
    runs: dict = {"ragline": {}}
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    queries_file, queries, manifest = None, [], {}
    for scale in scales:
        if args.corpus == "docs":
            corpus = common.SHARED_DOCS
            if args.skip or args.max_kb:
                corpus = partition_limit.subset_corpus(corpus, workdir / "docs-subset", args.skip, args.max_kb)
        else:
            corpus = workdir / f"corpus-{scale}x"
            manifest = common.build_squad_corpus(corpus, args.docs * scale)
            if queries_file is None and args.queries:
                queries = common.load_queries(args.queries, set(manifest.values()))
                queries_file = workdir / "queries.json"
                common.write_queries(queries_file, queries)
        print(f"[{scale}x] ragline + encode limit on {corpus} ...", file=sys.stderr)
        first = scale == scales[0]
        # The limit and recall are measured at the first scale; larger ones measure cost growth.
        run = run_ragline(corpus, workdir, queries_file if first else None, f"{scale}x", env, with_limit=first)
        run["recall_at_10"] = common.recall_at_k(run.pop("retrieved"), queries, manifest) if queries else None
        default = run.pop("retrieved_default")
        run["recall_at_10_default"] = common.recall_at_k(default, queries, manifest) if queries else None
        runs["ragline"][f"{scale}x"] = run
        if args.corpus == "docs":
            break
    peers = [p.strip() for p in args.peers.split(",") if p.strip()] if args.peers else []
    if args.corpus == "docs":
        peers = [p for p in peers if p not in TEXT_ONLY_PEERS]
    if args.corpus == "squad":
        corpus = workdir / f"corpus-{scales[0]}x"
        manifest = common.load_manifest(corpus)
    for name in peers:
        ensure_peers_env(name)
        print(f"[{scales[0]}x] {name} ...", file=sys.stderr)
        run = run_peer(name, corpus, workdir, queries_file, args)
        retrieved = run.pop("retrieved", {})
        run["recall_at_10"] = common.recall_at_k(retrieved, queries, manifest) if queries else None
        runs[name] = run
    return runs


def ratios(runs: dict) -> dict:
    scales = list(runs["ragline"])
    base = runs["ragline"][scales[0]]
    limit = base["limit"] or {}
    # The redefined limit: raw partition + raw encode, each run alone (issue 17).
    limit_s = limit["encode_s"] + limit["partition_s"] if "partition_s" in limit else None
    out = {
        "docs": base["docs"],
        "limit_s": round(limit_s, 2) if limit_s else None,
        "ingest_s": base["ingest_s"],
        "ingest_vs_partition_encode_limit": round(limit_s / base["ingest_s"], 3) if limit_s else None,
        "partition_vs_encode": round(limit["partition_s"] / limit["encode_s"], 3) if limit_s else None,
        "ragline_docs_per_s": round(base["docs"] / base["ingest_s"], 2),
        "ragline_chunks_per_s": round(base["chunks"] / base["ingest_s"], 2),
        "limit_chunks_per_s": limit.get("chunks_per_s"),
        # Same chunks, so the throughput ratio is the time ratio.
        "ingest_vs_limit": round(limit["encode_s"] / base["ingest_s"], 3) if limit else None,
        "reingest_share_of_cold": round(base["reingest_s"] / base["ingest_s"], 4),
        # Serial parse time over serial encode time: with both on the same cores, the flow's best
        # possible ingest/limit is about 1 / (1 + parse_vs_encode).
        "parse_vs_encode": round(limit["parse_s"] / limit["encode_s"], 3) if limit else None,
        "peak_pss_mb": {scale: runs["ragline"][scale]["peak_pss_mb"] for scale in scales},
        "peak_rss_sum_mb": {scale: runs["ragline"][scale]["peak_rss_sum_mb"] for scale in scales},
        "docs_per_s_by_scale": {s: round(r["docs"] / r["ingest_s"], 2) for s, r in runs["ragline"].items()},
        "recall_at_10": {
            "ragline": base["recall_at_10"],
            f"ragline_{base['retrieval_mode']}": base["recall_at_10_default"],
        },
    }
    for peer in PEERS:
        if peer in runs and runs[peer].get("ingest_s"):
            peer_docs_per_s = runs[peer]["docs"] / runs[peer]["ingest_s"]
            out[f"vs_{peer}"] = round(out["ragline_docs_per_s"] / peer_docs_per_s, 2)
            out["recall_at_10"][peer] = runs[peer]["recall_at_10"]
    return out


def record(result: dict) -> None:
    r = result["ratios"]
    pss = r["peak_pss_mb"]
    recall = r["recall_at_10"]
    m = result["machine"]
    v = result["versions"]
    common.append_row(
        "ingest-runs",
        [
            "date",
            "commit",
            "machine",
            "versions",
            "command",
            "docs",
            "limit chunks/s",
            "ragline chunks/s",
            "ingest/limit",
            "parse/encode",
            "re-ingest/cold",
            "vs LlamaIndex",
            "vs Haystack",
            "recall@10 (ragline dense/default, LI, HS)",
            "peak PSS MB by scale",
        ],
        [
            result["date"],
            result["commit"],
            f"{m['cores']} cores {m['cpu']}, load {m['load_avg_1m']}",
            f"torch {v.get('torch')}, st {v.get('sentence-transformers')}, prefect {v.get('prefect')}",
            f"`{result['command']}`",
            str(r["docs"]),
            common.fmt(r["limit_chunks_per_s"], 1),
            common.fmt(r["ragline_chunks_per_s"], 1),
            common.fmt(r["ingest_vs_limit"]),
            common.fmt(r["parse_vs_encode"]),
            f"{r['reingest_share_of_cold'] * 100:.1f}%",
            common.fmt(r.get("vs_llamaindex")),
            common.fmt(r.get("vs_haystack")),
            " / ".join(f"{name} {common.fmt(value, 3)}" for name, value in recall.items()),
            ", ".join(f"{s}: {mb:.0f}" for s, mb in pss.items()),
        ],
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=1000, help="documents at 1x (SQuAD passages, repeated with variations)")
    p.add_argument("--scales", default="1,4", help="corpus multiples to measure ragline at, e.g. 1,4,16")
    p.add_argument("--queries", type=int, default=300, help="queries for recall@10 (0 to skip)")
    p.add_argument("--corpus", choices=["squad", "docs"], default="squad")
    p.add_argument(
        "--peers",
        default="llamaindex,haystack,unstructured",
        help="peers to run, comma-separated ('' for none); LlamaIndex and Haystack run on SQuAD only",
    )
    p.add_argument("--no-peers", dest="peers", action="store_const", const="", help="run no peer")
    p.add_argument("--skip", action="append", default=[], help="--corpus docs: leave this file out (repeatable)")
    p.add_argument("--max-kb", type=float, help="--corpus docs: leave out files bigger than this")
    p.add_argument("--no-record", dest="record", action="store_false", help="do not add a row to BENCHMARKS.md")
    p.add_argument("--out", type=Path, help="result JSON path (default benchmarks/results/ingest-<time>.json)")
    p.add_argument("--workdir", type=Path, help="where corpora and stores go (default: a temp folder)")
    args, _ = p.parse_known_args(argv)
    return args


def main(argv=None) -> dict | None:
    common.quiet_environment()
    args = parse_args(argv)
    runs = common.run_with_prefect(measure, args)
    packages = [
        "ragline",
        "torch",
        "sentence-transformers",
        "prefect",
        "qdrant-edge-py",
        "unstructured",
        "transformers",
    ]
    result = {
        **common.result_header("ingest", packages),
        "config": {
            "docs": args.docs,
            "scales": args.scales,
            "queries": args.queries,
            "corpus": args.corpus,
            "skip": args.skip,
            "max_kb": args.max_kb,
        },
        "runs": runs,
    }
    result["ratios"] = ratios(runs)
    path = common.save_result("ingest", result, args.out)
    if args.record:
        partition_limit.record(result)
        if args.corpus == "squad":
            record(result)
    print(json_summary(result, path))
    return result


def json_summary(result: dict, path: Path) -> str:
    import json

    return json.dumps({"result": str(path), **result["ratios"]}, indent=2)


if __name__ == "__main__":
    main()
