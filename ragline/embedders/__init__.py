"""Embedding backends behind one protocol, chosen by name from the backend table; models load in warm_up()."""

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
