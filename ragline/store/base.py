"""The vector-store interface ragline needs, and the checks every implementation shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ragline.records import Chunk, Hit

# Payload fields with a keyword index: they are what filters and sync bookkeeping match on.
KEYWORD_FIELDS = ("source", "file_type", "doc_hash", "root")


class EmbedderMismatchError(RuntimeError):
    """The collection was built with another embedding model; mixing them gives garbage."""


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    embedder: str
    dimensions: int
    distance: str = "cosine"


@dataclass(frozen=True)
class SearchFilter:
    sources: tuple[str, ...] = ()
    file_types: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not self.sources and not self.file_types


@dataclass
class SparseVector:
    indices: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@runtime_checkable
class VectorStore(Protocol):
    def ensure_collection(self, info: CollectionInfo) -> CollectionInfo: ...

    def collection_info(self, name: str) -> CollectionInfo | None: ...

    def upsert(
        self,
        collection: str,
        chunks: list[Chunk],
        vectors: np.ndarray,
        root: str,
        sparse: list[SparseVector] | None = None,
    ) -> None: ...

    def document_hashes(self, collection: str, root: str) -> dict[str, set[str]]: ...

    def delete_document(self, collection: str, source: str, root: str, keep_hash: str | None = None) -> None: ...

    def search(
        self, collection: str, vector: np.ndarray, k: int, filters: SearchFilter | None = None
    ) -> list[Hit]: ...

    def count(self, collection: str) -> int: ...

    def close(self) -> None: ...


def check_compatible(existing: CollectionInfo, wanted: CollectionInfo) -> CollectionInfo:
    if (existing.embedder, existing.dimensions) != (wanted.embedder, wanted.dimensions):
        raise EmbedderMismatchError(
            f"collection {existing.name!r} was built with {existing.embedder} "
            f"({existing.dimensions} dims) but this run uses {wanted.embedder} "
            f"({wanted.dimensions} dims). Use the same embedding settings, pick another "
            "collection (--collection NAME), or delete and re-ingest this one."
        )
    return existing
