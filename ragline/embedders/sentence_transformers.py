"""sentence-transformers on torch (CPU, or CUDA in fp16)."""

from __future__ import annotations

import numpy as np

from ragline.embedders.base import LazyEmbedder
from ragline.embedders.prompts import prompts_from_mapping
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
        source = str(location.path) if location.local else location.hub_id
        try:
            self.model = SentenceTransformer(source, device=self.device, trust_remote_code=spec.trust_remote_code)
        except ValueError as exc:
            if "trust_remote_code" not in str(exc):
                raise
            raise ValueError(
                f"{spec.model!r} runs its own Python code from the model repository; if you trust it, set "
                "embedding.trust_remote_code = true (RAGLINE_EMBEDDING__TRUST_REMOTE_CODE=true)"
            ) from exc
        if self.device.startswith("cuda"):
            self.model.half()  # fp16 on the GPU: twice the throughput, same ranking
        self.model.max_seq_length = spec.max_seq_length
        self._dimensions = int(self.model.get_embedding_dimension())
        # The model's own prompts, also for a hub model (read from its config by sentence-transformers).
        self._model_prompts = prompts_from_mapping(getattr(self.model, "prompts", None))

    def encode(self, texts: list[str], prompt: str) -> np.ndarray:
        # sentence-transformers' own prompt argument: it also knows the models whose pooling leaves
        # the prompt's tokens out (include_prompt = false).
        return self._encode(texts, prompt or None)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        return self._encode(texts, None)

    def _encode(self, texts: list[str], prompt: str | None) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            prompt=prompt,
            batch_size=self.spec.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
