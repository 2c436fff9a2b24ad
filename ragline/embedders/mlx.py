"""Embedding models on MLX through mlx-embeddings (Apple Silicon; `mlx[cpu]` runs it on Linux too)."""

from __future__ import annotations

import numpy as np

from ragline.embedders.base import LazyEmbedder, MissingDependencyError
from ragline.models.refs import resolve_model


class MlxEmbedder(LazyEmbedder):
    def _load(self) -> None:
        try:
            import mlx.core as mx
            from mlx_embeddings import load
        except ImportError as exc:
            raise MissingDependencyError.for_backend("embedding", "mlx") from exc
        location = resolve_model(self.spec.model)
        self._mx = mx
        self.model, wrapper = load(str(location.path) if location.local else location.hub_id)
        # TokenizerWrapper hides the Hugging Face tokenizer; batch encoding needs the latter.
        self.tokenizer = getattr(wrapper, "_tokenizer", wrapper)
        self._dimensions = int(self._embed_batch(["dimension probe"]).shape[1])

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        mx = self._mx
        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.spec.max_seq_length, return_tensors="np"
        )
        output = self.model(mx.array(encoded["input_ids"]), attention_mask=mx.array(encoded["attention_mask"]))
        # text_embeds: mean-pooled and L2-normalised by mlx-embeddings (sentence-transformers' recipe).
        return np.array(output.text_embeds, dtype=np.float32)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        size = self.spec.batch_size
        return np.concatenate([self._embed_batch(texts[i : i + size]) for i in range(0, len(texts), size)])
