"""The embedder protocol, the backend registry, and one cached embedder per process."""

from __future__ import annotations

import functools
import importlib
import threading
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import numpy as np


class MissingDependencyError(RuntimeError):
    """An optional backend's package is not installed; the message carries the pip command."""

    @classmethod
    def for_extra(cls, backend: str, extra: str) -> "MissingDependencyError":
        return cls(f"the {backend} backend needs extra packages: pip install 'ragline[{extra}]'")


class ModelFormatError(ValueError):
    """The configured model's format is one this backend cannot load (e.g. a folder for GGUF)."""


@runtime_checkable
class Embedder(Protocol):
    name: str  # "<backend>:<model ref>", recorded with each collection
    dimensions: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class EmbedderSpec:
    backend: str
    model: str
    device: str = "auto"
    batch_size: int = 32
    max_seq_length: int = 256
    api_base: str | None = None
    api_key: str | None = None


# backend name -> "module:factory"; factories take an EmbedderSpec and return an Embedder.
_REGISTRY: dict[str, str] = {
    "sentence-transformers": "ragline.embedders.sentence_transformers:SentenceTransformerEmbedder",
    "onnx": "ragline.embedders.onnx:OnnxEmbedder",
    "onnx-int8": "ragline.embedders.onnx:OnnxInt8Embedder",
    "gguf": "ragline.embedders.gguf:GgufEmbedder",
    "mlx": "ragline.embedders.mlx:MlxEmbedder",
    "openai": "ragline.embedders.openai_compat:OpenAICompatEmbedder",
}


def register_backend(name: str, target: str) -> None:
    _REGISTRY[name] = target


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def _factory(backend: str) -> Callable[[EmbedderSpec], Embedder]:
    if backend not in _REGISTRY:
        raise ValueError(
            f"unknown embedding backend {backend!r}; choose one of: {', '.join(available_backends())}"
        )
    module_name, attribute = _REGISTRY[backend].split(":")
    return getattr(importlib.import_module(module_name), attribute)


def resolve_backend(spec: EmbedderSpec) -> EmbedderSpec:
    """`auto` picks the backend for this hardware (see ragline.selection when present)."""
    if spec.backend != "auto":
        return spec
    try:
        from ragline.models.selection import auto_embedding_backend
    except ImportError:
        return EmbedderSpec(**{**spec.__dict__, "backend": "sentence-transformers"})
    return EmbedderSpec(**{**spec.__dict__, "backend": auto_embedding_backend(spec)})


_load_lock = threading.Lock()


def get_embedder(spec: EmbedderSpec) -> Embedder:
    """One loaded model per spec per process: loading costs seconds, embedding is the hot path.

    Thread-safe: a warm-up thread and a task asking at the same time share one load."""
    with _load_lock:
        return _load_embedder(spec)


@functools.lru_cache(maxsize=4)
def _load_embedder(spec: EmbedderSpec) -> Embedder:
    spec = resolve_backend(spec)
    return _factory(spec.backend)(spec)
