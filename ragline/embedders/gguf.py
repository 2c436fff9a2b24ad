"""GGUF embedding models through llama.cpp (llama-cpp-python).

Three llama.cpp facts shape this module (measured here):
- `n_ubatch` must equal `n_batch` for non-causal (BERT) models, or llama.cpp aborts the process;
- inputs longer than the batch abort too, so texts are truncated to `max_seq_length` tokens here,
  keeping the final [SEP] token the way sentence-transformers' tokenizer does;
- with every core busy, llama.cpp's spinning threads oversubscribe and throughput collapses, so
  the thread count is a setting (`RAGLINE_GGUF_THREADS`) defaulting to the cores we may use.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ragline.embedders.base import EmbedderSpec, LazyEmbedder, MissingDependencyError, ModelFormatError
from ragline.models.hardware import usable_cpus
from ragline.models.refs import resolve_model


def gguf_threads() -> int:
    configured = os.environ.get("RAGLINE_GGUF_THREADS")
    return int(configured) if configured else usable_cpus()


def _model_path(spec: EmbedderSpec) -> Path | str:
    location = resolve_model(spec.model)
    if location.local:
        if location.path.suffix != ".gguf":
            raise ModelFormatError(
                f"the gguf backend needs a .gguf file; {spec.model!r} is {location.path}. Convert a "
                "sentence-transformers folder with llama.cpp's convert_hf_to_gguf.py "
                "(python -m ragline.embedders.gguf_convert FOLDER OUT.gguf), or use backend "
                "'sentence-transformers' / 'onnx-int8' for it."
            )
        return location.path
    return location.hub_id


class GgufEmbedder(LazyEmbedder):
    def __init__(self, spec: EmbedderSpec):
        super().__init__(spec)
        self.max_tokens = spec.max_seq_length
        # One decode packs several sequences into n_batch tokens (n_ubatch == n_batch, see above).
        # Packed attention costs n_batch^2 per layer, so a larger batch is slower, not faster:
        # two 256-token passages per decode is the sweet spot for MiniLM-sized models.
        self.batch_tokens = max(spec.max_seq_length, 512)
        self._lock = threading.Lock()  # a llama.cpp context is not thread-safe

    def _load(self) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise MissingDependencyError.for_backend("embedding", "gguf") from exc
        self._llama_cpp = llama_cpp
        common = dict(
            embedding=True,
            n_ctx=self.batch_tokens,
            n_batch=self.batch_tokens,
            n_ubatch=self.batch_tokens,
            n_threads=gguf_threads(),
            n_threads_batch=gguf_threads(),
            verbose=False,
        )
        source = _model_path(self.spec)
        if isinstance(source, Path):
            self.llm = llama_cpp.Llama(model_path=str(source), **common)
        else:
            repo, _, filename = source.rpartition("/") if source.endswith(".gguf") else (source, "", "*Q8_0.gguf")
            self.llm = llama_cpp.Llama.from_pretrained(repo_id=repo, filename=filename, **common)
        if self.llm.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE:
            raise ValueError(
                f"{self.spec.model!r} has no pooling: it is not an embedding model (chat GGUFs such as "
                "SmolLM2 are not). Use an embedding GGUF, e.g. nomic-ai/nomic-embed-text-v1.5-GGUF."
            )
        self._dimensions = int(self.llm.n_embd())

    def tokens(self, text: str) -> list[int]:
        self.warm_up()
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=True)
        if len(ids) > self.max_tokens:
            ids = ids[: self.max_tokens - 1] + ids[-1:]  # keep the closing [SEP]
        return ids

    def _decode(self, sequences: list[list[int]]) -> list[np.ndarray]:
        llama_cpp, llm = self._llama_cpp, self.llm
        llm._batch.reset()
        for seq_id, ids in enumerate(sequences):
            llm._batch.add_sequence(ids, seq_id, True)
        llm._ctx.kv_cache_clear()
        llm._ctx.decode(llm._batch)
        vectors = []
        for seq_id in range(len(sequences)):
            pointer = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, seq_id)
            vectors.append(np.ctypeslib.as_array(pointer, shape=(self._dimensions,)).copy())
        llm._batch.reset()
        return vectors

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        max_sequences = self.llm.context_params.n_seq_max
        with self._lock:
            pending: list[tuple[int, list[int]]] = []
            used = 0
            for index, text in enumerate(texts):
                ids = self.tokens(text)
                if pending and (used + len(ids) > self.batch_tokens or len(pending) >= max_sequences):
                    self._store(out, pending)
                    pending, used = [], 0
                pending.append((index, ids))
                used += len(ids)
            if pending:
                self._store(out, pending)
        return out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)

    def _store(self, out: np.ndarray, pending: list[tuple[int, list[int]]]) -> None:
        for (index, _), vector in zip(pending, self._decode([ids for _, ids in pending]), strict=True):
            out[index] = vector
