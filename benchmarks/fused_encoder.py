"""The int8 MiniLM with onnxruntime's transformer fusions applied before quantization, vs today's int8.

    .venv/bin/python benchmarks/fused_encoder.py                 # 570 SQuAD passages, 300 queries
    .venv/bin/python benchmarks/fused_encoder.py --passages 200 --queries 100 --rounds 2
    .venv/bin/python benchmarks/fused_encoder.py --quantize-ops MatMul  # fused Attention kept fp32

Today (ragline/embedders/onnx.py): torch.onnx export (fp32) -> quantize_dynamic(per_channel).
Tried here: the same fp32 export with eager attention (see export_eager_fp32) ->
onnxruntime.transformers.optimizer.optimize_model(model_type "bert": Attention,
SkipLayerNormalization, BiasGelu, EmbedLayerNormalization fusions) -> the same quantize_dynamic.
Both models run through ragline's own OnnxInt8Embedder (its session options, tokenizer, pooling
and parallel batches): only the session is swapped, so the comparison is the graph alone. Speed
is measured in alternating rounds (A B A B ...), best round per model, since this machine's speed
drifts between minutes. Quality: cosine to the unfused fp32 export (which matches torch at
1.0000, BENCHMARKS.md) and dense recall@10 of whole SQuAD passages.
Prints JSON and saves it under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def export_eager_fp32(model_dir: Path, target: Path) -> Path:
    """ragline's export with eager attention: transformers 5 defaults to SDPA, whose exported graph
    the optimizer's Attention fusion does not match (only LayerNorm/GELU fuse then); the eager
    graph fuses into Attention + EmbedLayerNormalization."""
    from ragline.embedders.onnx import export_fp32

    return export_fp32(model_dir, target, attn_implementation="eager")


def fused_models(
    fp32: Path, out_dir: Path, hidden_size: int, num_heads: int, quantize_ops: list[str] | None = None
) -> tuple[Path, Path, dict]:
    """fp32 -> fused fp32 -> fused int8 (per-channel, exactly as ragline quantizes today)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    fused_fp32 = out_dir / "model_fused.onnx"
    fused_int8 = out_dir / "model_fused_qint8_per_channel.onnx"
    started = time.perf_counter()
    optimized = optimizer.optimize_model(
        str(fp32), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0
    )
    stats = optimized.get_fused_operator_statistics()
    optimized.save_model_to_file(str(fused_fp32))
    # Fused ops (com.microsoft domain) defeat the quantizer's shape inference; their outputs are float.
    quantize_dynamic(
        str(fused_fp32),
        str(fused_int8),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        op_types_to_quantize=quantize_ops or None,
    )
    stats = {name: count for name, count in stats.items() if count}
    return fused_fp32, fused_int8, {"fusions": stats, "build_s": round(time.perf_counter() - started, 2)}


def session_for(embedder, path: Path):
    """A session with the embedder's own options (threads per batch, parallel batches)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    old = embedder.session.get_session_options()
    options.intra_op_num_threads = old.intra_op_num_threads
    options.inter_op_num_threads = old.inter_op_num_threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed_embed(embedder, session, texts: list[str]) -> tuple[float, np.ndarray]:
    embedder.session = session
    started = time.perf_counter()
    vectors = embedder.embed_documents(texts)
    return time.perf_counter() - started, vectors


def recall_at_10(passage_vectors: np.ndarray, passage_ids: list[str], query_vectors: np.ndarray, queries) -> float:
    scores = query_vectors @ passage_vectors.T
    top = np.argsort(-scores, axis=1)[:, :10]
    total = 0.0
    for row, query in zip(top, queries, strict=True):
        found = {passage_ids[i] for i in row}
        total += len(query.relevant & found) / len(query.relevant)
    return round(total / len(queries), 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passages", type=int, default=570, help="SQuAD passages embedded (speed and recall)")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3, help="alternating timing rounds per model")
    p.add_argument("--quantize-ops", help="e.g. MatMul: leave the fused Attention in fp32 (default: all)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    from ragline import backends
    from ragline.embedders import get_embedder
    from ragline.embedders.onnx import ensure_onnx_model
    from ragline.models.refs import resolve_model
    from ragline.settings import get_settings

    settings = get_settings()
    spec = backends.embedder_spec(settings)
    if spec.backend != "onnx-int8":
        raise SystemExit(f"the embedding backend is {spec.backend!r}; run with RAGLINE_EMBEDDING__BACKEND=onnx-int8")
    model_dir = resolve_model(spec.model).path
    config = json.loads((model_dir / "config.json").read_text())
    embedder = get_embedder(spec)
    embedder.warm_up()
    fp32 = ensure_onnx_model(model_dir, int8=False)
    today_int8 = ensure_onnx_model(model_dir, int8=True)

    passages = common.squad_passages()[: args.passages]
    texts = [f"{row['title']}\n\n{row['text']}" for row in passages]
    ids = [row["_id"] for row in passages]
    queries = common.load_queries(args.queries, set(ids))
    with tempfile.TemporaryDirectory(prefix="ragline-fused-") as tmp:
        eager = export_eager_fp32(model_dir, Path(tmp) / "model_eager.onnx")
        fused_fp32, fused_int8, build = fused_models(
            eager,
            Path(tmp),
            config["hidden_size"],
            config["num_attention_heads"],
            args.quantize_ops.split(",") if args.quantize_ops else None,
        )
        sessions = {
            "fp32": session_for(embedder, fp32),
            "int8_today": embedder.session,
            "int8_fused": session_for(embedder, fused_int8),
            "fp32_fused": session_for(embedder, fused_fp32),
        }
        sizes = {"int8_today_mb": today_int8.stat().st_size / 2**20, "int8_fused_mb": fused_int8.stat().st_size / 2**20}
        timed = {name: [] for name in ("int8_today", "int8_fused")}
        vectors = {}
        for _ in range(args.rounds):
            for name in timed:
                seconds, vectors[name] = timed_embed(embedder, sessions[name], texts)
                timed[name].append(round(seconds, 2))
        _, vectors["fp32"] = timed_embed(embedder, sessions["fp32"], texts)
        _, vectors["fp32_fused"] = timed_embed(embedder, sessions["fp32_fused"], texts)
        query_vectors = {}
        for name in vectors:
            embedder.session = sessions[name]
            query_vectors[name] = embedder.embed_documents([q.text for q in queries])
    result = summarise(args, build, sizes, timed, vectors, query_vectors, ids, queries, len(texts))
    path = common.save_result("fused-encoder", result, args.out)
    print(json.dumps({"result": str(path), **result}, indent=2))


def summarise(args, build, sizes, timed, vectors, query_vectors, ids, queries, n_texts) -> dict:
    reference = vectors["fp32"]
    best = {name: min(runs) for name, runs in timed.items()}
    return {
        "benchmark": "fused-encoder",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": common.git_commit(),
        "command": common.command_line(),
        "machine": common.machine(),
        "versions": common.versions(["onnxruntime", "onnx", "torch"]),
        "texts": n_texts,
        "queries": len(queries),
        "build": build,
        "quantize_ops": args.quantize_ops or "all",
        "model_mb": {name: round(mb, 1) for name, mb in sizes.items()},
        "seconds_per_round": timed,
        "texts_per_s": {name: round(n_texts / s, 2) for name, s in best.items()},
        "fused_speedup": round(best["int8_today"] / best["int8_fused"], 3),
        "mean_cosine_vs_fp32": {
            name: round(float(np.mean(np.sum(v * reference, axis=1))), 5) for name, v in vectors.items()
        },
        "recall_at_10": {name: recall_at_10(vectors[name], ids, query_vectors[name], queries) for name in vectors},
    }


if __name__ == "__main__":
    main()
