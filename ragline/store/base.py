"""The vector-store interface ragline needs, and the checks every implementation shares."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ragline.records import Chunk, DocumentRecord, Hit

# Payload fields with a keyword index: they are what filters and sync bookkeeping match on.
KEYWORD_FIELDS = ("source", "file_type", "doc_hash", "root")


# A collection name becomes a folder of the embedded store and a Qdrant collection: one path
# component of safe characters (no "/", no "..", no leading dot). Names users give are at most
# 100 characters, which leaves room for the suffixes ragline adds (`__build-<hash>__manifest`).
NAME_CHARACTERS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 100
MAX_STORED_NAME = 200


class InvalidCollectionNameError(ValueError):
    """A collection name that is not a single safe name (e.g. `../x`)."""


def check_collection_name(name: str, max_length: int = MAX_NAME) -> str:
    if not isinstance(name, str) or len(name) > max_length or not NAME_CHARACTERS.fullmatch(name):
        raise InvalidCollectionNameError(
            f"collection name {str(name)[:120]!r} is not allowed: use 1 to {MAX_NAME} letters, digits, "
            "'_', '-' or '.', starting with a letter or digit (e.g. --collection team-docs)"
        )
    return name


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

    def any_of(self) -> list[tuple[str, list[str]]]:
        """(payload field, values) pairs: a point matches when each field holds one of its values."""
        fields = (("source", self.sources), ("file_type", self.file_types))
        return [(key, list(values)) for key, values in fields if values]


@dataclass
class SparseVector:
    indices: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


RETRIEVAL_MODES = ("dense", "sparse", "hybrid")
FUSION_METHODS = ("rrf", "dbsf")


@dataclass(frozen=True)
class FusionSpec:
    """How hybrid search merges its dense and sparse candidate lists (Qdrant's query API).

    `candidates` is how many points each branch contributes before fusion; `rrf_k` damps the
    weight of top ranks in reciprocal rank fusion (higher = flatter); dbsf ignores it.
    """

    method: str = "dbsf"
    rrf_k: int = 60
    candidates: int = 100


def check_search_request(mode: str, vector, sparse: SparseVector | None, fusion: FusionSpec) -> None:
    """Reject a search the store cannot run, naming the setting to fix."""
    if mode not in RETRIEVAL_MODES:
        raise ValueError(
            f"retrieval mode {mode!r} is unknown: set retrieval.mode to one of {', '.join(RETRIEVAL_MODES)}"
        )
    if fusion.method not in FUSION_METHODS:
        raise ValueError(
            f"fusion {fusion.method!r} is unknown: set retrieval.fusion to one of {', '.join(FUSION_METHODS)}"
        )
    if mode in ("dense", "hybrid") and vector is None:
        raise ValueError(f"{mode} search needs the query's dense vector")
    if mode in ("sparse", "hybrid") and sparse is None:
        raise ValueError(f"{mode} search needs the query's sparse vector (ragline.sparse.sparse_query)")


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

    def delete_document(self, collection: str, source: str, root: str, keep_hash: str | None = None) -> None: ...

    # Document sync (ragline/store/manifest.py): the manifest, per-version chunk counts, atomic
    # promotion of staged documents, removal of documents that left the source.
    def read_manifest(self, collection: str, root: str) -> dict[str, DocumentRecord]: ...

    def chunk_counts(self, collection: str, root: str) -> dict[str, dict[str, int]]: ...

    def commit_documents(
        self, collection: str, root: str, records: list[DocumentRecord], staging: str | None
    ) -> None: ...

    def write_manifest(self, collection: str, root: str, records: list[DocumentRecord]) -> None: ...

    def remove_document(self, collection: str, root: str, source: str) -> None: ...

    def documents_per_root(self, collection: str) -> dict[str, int]: ...

    # Make `collection` (and its manifest) the finished `build` in one atomic step, then drop the
    # collection's previous data (ragline/ingestion/rebuild.py).
    def switch_collection(self, collection: str, build: str) -> None: ...

    def search(
        self,
        collection: str,
        vector: np.ndarray | None,
        k: int,
        filters: SearchFilter | None = None,
        *,
        mode: str = "dense",
        sparse: SparseVector | None = None,
        fusion: FusionSpec | None = None,
    ) -> list[Hit]: ...

    def drop_collection(self, name: str) -> None: ...

    def count(self, collection: str) -> int: ...

    def close(self) -> None: ...


class SearchableStore(ABC):
    """`search` written once for the stores: check the request, query the engine, make hits.

    The lock is the one the document sync holds, so a search never sees a promotion half-done.
    """

    _lock: threading.RLock

    @abstractmethod
    def _query_points(
        self, collection: str, vector, sparse, k: int, filters: SearchFilter | None, mode: str, fusion: FusionSpec
    ) -> list[Any]:
        """The engine's scored points (id, score, payload) for a checked request; [] if none can match."""

    def search(self, collection: str, vector, k: int, filters=None, *, mode="dense", sparse=None, fusion=None):
        """Dense, sparse or hybrid search (see VectorStore.search)."""
        fusion = fusion or FusionSpec()
        check_search_request(mode, vector, sparse, fusion)
        with self._lock:
            points = self._query_points(collection, vector, sparse, k, filters, mode, fusion)
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]


def utf8_payload(payload: dict) -> dict:
    """The payload with every string made valid UTF-8 (lone surrogates replaced): the engines
    reject such strings, and one odd file name must never stop a whole collection's sync."""
    return {key: _utf8(value) for key, value in payload.items()}


def _utf8(value):
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_utf8(item) for item in value]
    if isinstance(value, dict):
        return utf8_payload(value)
    return value


def check_compatible(existing: CollectionInfo, wanted: CollectionInfo) -> CollectionInfo:
    if (existing.embedder, existing.dimensions) != (wanted.embedder, wanted.dimensions):
        raise EmbedderMismatchError(
            f"collection {existing.name!r} was built with {existing.embedder} "
            f"({existing.dimensions} dims) but this run uses {wanted.embedder} "
            f"({wanted.dimensions} dims). Use the same embedding settings, pick another "
            "collection (--collection NAME), or delete and re-ingest this one."
        )
    return existing
