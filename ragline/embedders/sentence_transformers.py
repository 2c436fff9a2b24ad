"""sentence-transformers on torch (CPU, or CUDA in fp16)."""

from __future__ import annotations

import numpy as np

from ragline.embedders.base import LazyEmbedder
from ragline.models.refs import resolve_model


def pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder(LazyEmbedder):
    def _load(self) -> None:
        from sentence_transformers import SentenceTransformer

        spec = self.spec
        location = resolve_model(spec.model)
        self.device = pick_device(spec.device)
        self.model = SentenceTransformer(str(location.path) if location.local else location.hub_id, device=self.device)
        if self.device.startswith("cuda"):
            self.model.half()
        self.model.max_seq_length = spec.max_seq_length
        self._dimensions = int(self.model.get_embedding_dimension())

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        vectors = self.model.encode(
            texts,
            batch_size=self.spec.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
