"""Any OpenAI-compatible `/v1/embeddings` endpoint: OpenAI, Ollama, vLLM, TEI, Infinity, llama.cpp.

`embedding.api_base` is the URL up to and including `/v1` (e.g. `https://api.openai.com/v1`,
`http://localhost:11434/v1`); `embedding.api_key` is sent as a Bearer token when set.
"""

from __future__ import annotations

import os

import numpy as np

from ragline.embedders.base import EmbedderSpec, LazyEmbedder

OPENAI_BASE = "https://api.openai.com/v1"


def api_settings(api_base: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    base = (api_base or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE).rstrip("/")
    key = api_key or os.environ.get("OPENAI_API_KEY")
    return base, ({"Authorization": f"Bearer {key}"} if key else {})


def raise_for_api_error(response, what: str) -> None:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{what} failed: HTTP {response.status_code} from {response.request.url}: "
            f"{response.text[:300]}. Check api_base, api_key and the model name in your settings."
        )


class OpenAICompatEmbedder(LazyEmbedder):
    def __init__(self, spec: EmbedderSpec, timeout_s: float = 120.0):
        super().__init__(spec)
        self.timeout_s = timeout_s
        self.base, self._headers = api_settings(spec.api_base, spec.api_key)

    def _load(self) -> None:
        """Connect, and learn the dimensions from one request: the API says them nowhere else."""
        import httpx

        self.client = httpx.Client(base_url=self.base, headers=self._headers, timeout=self.timeout_s)
        self._dimensions = int(self._request(["dimension probe"]).shape[1])

    def _request(self, texts: list[str]) -> np.ndarray:
        try:
            response = self.client.post("/embeddings", json={"model": self.spec.model, "input": texts})
        except Exception as exc:  # connection refused, DNS, timeouts: say where we tried
            raise RuntimeError(f"cannot reach the embeddings API at {self.base}: {exc}") from exc
        raise_for_api_error(response, "embedding request")
        rows = sorted(response.json()["data"], key=lambda row: row["index"])
        vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        # Not every server normalises (llama.cpp does not); cosine search expects unit vectors.
        return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        size = self.spec.batch_size
        return np.concatenate([self._request(texts[i : i + size]) for i in range(0, len(texts), size)])
