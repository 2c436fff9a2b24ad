"""Embedding backends behind one protocol, chosen by name from a registry (heavy imports lazy)."""

from ragline.embedders.base import (
    Embedder,
    EmbedderSpec,
    MissingDependencyError,
    available_backends,
    get_embedder,
    register_backend,
)

__all__ = [
    "Embedder",
    "EmbedderSpec",
    "MissingDependencyError",
    "available_backends",
    "get_embedder",
    "register_backend",
]
