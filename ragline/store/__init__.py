"""Vector stores: the embedded qdrant-edge engine (default) or a Qdrant server via qdrant-client."""

from __future__ import annotations

import threading

from ragline.settings import RaglineSettings
from ragline.store.base import (
    CollectionInfo,
    EmbedderMismatchError,
    InvalidCollectionNameError,
    SearchFilter,
    SparseVector,
    VectorStore,
    check_collection_name,
)

__all__ = [
    "CollectionInfo",
    "EmbedderMismatchError",
    "InvalidCollectionNameError",
    "SearchFilter",
    "SparseVector",
    "VectorStore",
    "check_collection_name",
    "check_store_settings",
    "close_stores",
    "collection_for",
    "open_store",
]

_open_lock = threading.Lock()
_open_stores: dict[tuple, VectorStore] = {}


def _open(kind: str, location: str, api_key: str | None, shards, replicas) -> VectorStore:
    if kind == "edge":
        from ragline.store.edge import EdgeStore

        return EdgeStore(location)
    from ragline.store.qdrant_server import QdrantServerStore

    return QdrantServerStore(location, api_key=api_key, shard_number=shards, replication_factor=replicas)


def collection_for(embedder, name: str) -> CollectionInfo:
    """The collection `name` as built by `embedder` (an Embedder: its name and dimensions)."""
    return CollectionInfo(name=name, embedder=embedder.name, dimensions=embedder.dimensions)


def check_store_settings(settings: RaglineSettings) -> None:
    """Refuse settings that would silently store somewhere else than meant (ValueError)."""
    store = settings.store
    if store.kind == "qdrant" and not store.url and store.path is None:
        raise ValueError(
            'store.kind = "qdrant" needs store.url, the Qdrant server to use (RAGLINE_STORE__URL='
            "http://host:6333); or set store.path to use qdrant-client's local mode in that folder, "
            'or store.kind = "edge" for the embedded engine'
        )
    check_collection_name(store.collection)


def open_store(settings: RaglineSettings) -> VectorStore:
    """The store the settings name, opened once per process (embedded engines are single-owner)."""
    store = settings.store
    check_store_settings(settings)
    location = str(settings.store_path) if store.kind == "edge" else (store.url or str(settings.store_path))
    api_key = store.api_key.get_secret_value() if store.api_key else None
    key = (store.kind, location, api_key, store.shard_number, store.replication_factor)
    with _open_lock:
        if key not in _open_stores:
            _open_stores[key] = _open(*key)
        return _open_stores[key]


def close_stores() -> None:
    """Flush and release every store this process opened (tests, and before handing off a path)."""
    with _open_lock:
        for store in _open_stores.values():
            store.close()
        _open_stores.clear()
