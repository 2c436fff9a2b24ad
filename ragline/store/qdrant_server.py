"""A Qdrant server (URL + API key) through qdrant-client.

`location` may also be a folder path or ":memory:", which runs qdrant-client's local mode: the
same API and filters, used by tests since no Qdrant server runs on CI machines.
"""

from __future__ import annotations

import threading

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from ragline.records import Chunk, Hit
from ragline.store.base import (
    KEYWORD_FIELDS,
    CollectionInfo,
    SearchFilter,
    SparseVector,
    check_compatible,
)

DENSE = "dense"
SPARSE = "sparse"
SCROLL_PAGE = 1000
META_KEY = "ragline"


class QdrantServerStore:
    def __init__(
        self,
        location: str,
        api_key: str | None = None,
        shard_number: int | None = None,
        replication_factor: int | None = None,
    ):
        if location.startswith(("http://", "https://")):
            self.client = QdrantClient(url=location, api_key=api_key, timeout=60)
        elif location == ":memory:":
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(path=location)
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self._lock = threading.RLock()

    def collection_info(self, name: str) -> CollectionInfo | None:
        with self._lock:
            if not self.client.collection_exists(name):
                return None
            metadata = self.client.get_collection(name).config.metadata or {}
        if META_KEY not in metadata:
            raise RuntimeError(
                f"collection {name!r} exists but was not made by ragline; choose another collection name"
            )
        return CollectionInfo(**metadata[META_KEY])

    def ensure_collection(self, info: CollectionInfo) -> CollectionInfo:
        with self._lock:
            existing = self.collection_info(info.name)
            if existing is not None:
                return check_compatible(existing, info)
            self.client.create_collection(
                info.name,
                vectors_config={DENSE: qm.VectorParams(size=info.dimensions, distance=qm.Distance.COSINE)},
                sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
                shard_number=self.shard_number,
                replication_factor=self.replication_factor,
                metadata={META_KEY: info.__dict__},
            )
            for name in KEYWORD_FIELDS:
                self.client.create_payload_index(info.name, name, qm.PayloadSchemaType.KEYWORD)
            return info

    def upsert(
        self,
        collection: str,
        chunks: list[Chunk],
        vectors: np.ndarray,
        root: str,
        sparse: list[SparseVector] | None = None,
    ) -> None:
        points = []
        for i, chunk in enumerate(chunks):
            vector: dict = {DENSE: vectors[i].tolist()}
            if sparse is not None and sparse[i].indices:
                vector[SPARSE] = qm.SparseVector(indices=sparse[i].indices, values=sparse[i].values)
            points.append(qm.PointStruct(id=chunk.chunk_id, vector=vector, payload={**chunk.payload(), "root": root}))
        with self._lock:
            self.client.upsert(collection, points=points, wait=True)

    def delete_document(
        self, collection: str, source: str, root: str, keep_hash: str | None = None
    ) -> None:
        must = [_match("source", source), _match("root", root)]
        must_not = [_match("doc_hash", keep_hash)] if keep_hash else None
        selector = qm.FilterSelector(filter=qm.Filter(must=must, must_not=must_not))
        with self._lock:
            self.client.delete(collection, points_selector=selector, wait=True)

    def document_hashes(self, collection: str, root: str) -> dict[str, set[str]]:
        hashes: dict[str, set[str]] = {}
        if self.collection_info(collection) is None:
            return hashes
        offset = None
        while True:
            with self._lock:
                records, offset = self.client.scroll(
                    collection,
                    scroll_filter=qm.Filter(must=[_match("root", root)]),
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=["source", "doc_hash"],
                )
            for record in records:
                hashes.setdefault(record.payload["source"], set()).add(record.payload["doc_hash"])
            if offset is None:
                return hashes

    def search(
        self, collection: str, vector: np.ndarray, k: int, filters: SearchFilter | None = None
    ) -> list[Hit]:
        with self._lock:
            response = self.client.query_points(
                collection,
                query=vector.tolist(),
                using=DENSE,
                limit=k,
                query_filter=_filter(filters),
                with_payload=True,
            )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    def count(self, collection: str) -> int:
        with self._lock:
            if not self.client.collection_exists(collection):
                return 0
            return self.client.count(collection, exact=True).count

    def close(self) -> None:
        with self._lock:
            self.client.close()


def _match(key: str, value: str) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def _filter(filters: SearchFilter | None) -> qm.Filter | None:
    if filters is None or filters.is_empty():
        return None
    must = []
    if filters.sources:
        must.append(qm.FieldCondition(key="source", match=qm.MatchAny(any=list(filters.sources))))
    if filters.file_types:
        must.append(qm.FieldCondition(key="file_type", match=qm.MatchAny(any=list(filters.file_types))))
    return qm.Filter(must=must)
