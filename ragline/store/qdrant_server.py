"""A Qdrant server (URL + API key) through qdrant-client.

`location` may also be a folder path or ":memory:", which runs qdrant-client's local mode: the
same API and filters, used by tests since no Qdrant server runs on CI machines.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from ragline import crashpoints
from ragline.records import Chunk
from ragline.store.aliases import AliasedCollections
from ragline.store.base import (
    KEYWORD_FIELDS,
    MAX_STORED_NAME,
    CollectionInfo,
    FusionSpec,
    SearchableStore,
    SearchFilter,
    SparseVector,
    check_collection_name,
    check_compatible,
)
from ragline.store.documents import Conditions, DocumentSync, conditions_filter
from ragline.store.manifest import MANIFEST_KEYWORD_FIELDS, manifest_name

DENSE = "dense"
SPARSE = "sparse"
META_KEY = "ragline"
# The longest this process trusts its copy of the alias map. A switch elsewhere normally shows up
# as a miss at once; this bounds the case where that switch's process died before dropping the
# collection the alias named before (it stays, so no lookup misses).
ALIAS_MAP_MAX_AGE_S = 30.0


class QdrantServerStore(AliasedCollections, DocumentSync, SearchableStore):
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
        # alias -> collection, read when first needed. Name lookups run per document promoted,
        # per batch and per question; the map changes only at a rebuild's switch. This process
        # re-reads it when it switches or drops, and another process's switch shows up as a
        # lookup that misses (the collection the old alias named is dropped after the switch).
        self._aliases: dict[str, str] | None = None
        self._aliases_read_at = 0.0

    def _refresh_aliases(self) -> None:
        self._aliases = {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}
        self._aliases_read_at = time.monotonic()

    def _physical(self, name: str) -> str:
        """The collection a name reads: itself, or the one it is an alias of (cached map)."""
        check_collection_name(name, MAX_STORED_NAME)
        if self._aliases is None or time.monotonic() - self._aliases_read_at > ALIAS_MAP_MAX_AGE_S:
            self._refresh_aliases()
        return self._aliases.get(name, name)

    def _existing(self, name: str) -> str | None:
        """The collection `name` reads, if it exists; a miss re-reads the alias map once."""
        physical = self._physical(name)
        if self.client.collection_exists(physical):
            return physical
        self._refresh_aliases()
        current = self._physical(name)
        return current if current != physical and self.client.collection_exists(current) else None

    def collection_info(self, name: str) -> CollectionInfo | None:
        with self._lock:
            physical = self._existing(name)
            if physical is None:
                return None
            metadata = self.client.get_collection(physical).config.metadata or {}
        if META_KEY not in metadata:
            raise RuntimeError(
                f"collection {name!r} exists but was not made by ragline; choose another collection name"
            )
        return CollectionInfo(**{**metadata[META_KEY], "name": name})

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
            # Valid UTF-8 already: text and title by the chunker, source and root in display form.
            payload = {**chunk.payload(), "root": root}
            points.append(qm.PointStruct(id=chunk.chunk_id, vector=vector, payload=payload))
        with self._lock:
            self.client.upsert(collection, points=points, wait=True)

    # -- sync primitives (ragline/store/documents.py) -------------------------------------------
    # A server has no multi-operation transactions: a document is promoted by upserting its new
    # version, then deleting the others, so a client in another process can, between the two
    # requests, see both versions of that document (never none). Writes wait for completion, so
    # the manifest is written only after both have been applied.

    def _has_collection(self, name: str) -> bool:
        return self._existing(name) is not None

    def _target(self, name: str) -> str:
        return name

    def _manifest_target(self, collection: str, create: bool) -> str | None:
        name = manifest_name(collection)
        if self._existing(name) is not None:
            return name
        if not create:
            return None
        self.client.create_collection(name, vectors_config={})
        for field_name in MANIFEST_KEYWORD_FIELDS:
            self.client.create_payload_index(name, field_name, qm.PayloadSchemaType.KEYWORD)
        return name

    def _scroll_page(self, collection: str, must, offset, limit: int, with_payload, with_vectors: bool):
        return self.client.scroll(
            collection,
            scroll_filter=_where(must),
            limit=limit,
            offset=offset,
            with_payload=with_payload,
            with_vectors=with_vectors,
        )

    def _upsert_points(self, collection: str, points) -> None:
        structs = [qm.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points]
        self.client.upsert(collection, points=structs, wait=True)

    def _delete_where(self, collection: str, must, must_not=()) -> None:
        selector = qm.FilterSelector(filter=_where(must, must_not))
        self.client.delete(collection, points_selector=selector, wait=True)

    def _delete_ids(self, collection: str, ids: list[str]) -> None:
        self.client.delete(collection, points_selector=qm.PointIdsList(points=ids), wait=True)

    def _flush(self, collection: str) -> None:
        pass  # every write above waited for the server to apply it

    def _query_points(self, collection, vector, sparse, k, filters, mode, fusion) -> list:
        arguments = _query_arguments(vector, sparse, k, _filter(filters), mode, fusion)
        if arguments is None:
            return []
        return self.client.query_points(collection, limit=k, with_payload=True, **arguments).points

    # drop_collection: ragline/store/aliases.py

    def _unalias(self, names: list[str]) -> None:
        self.client.update_collection_aliases([_delete_alias(n) for n in names])
        self._aliases = None

    def _drop_one(self, physical: str) -> None:
        if self.client.collection_exists(physical):
            self.client.delete_collection(physical)

    def switch_collection(self, collection: str, build: str) -> None:
        """Point `collection` and its manifest at the finished `build` (aliases), then drop the old.

        Moving aliases is one atomic request. A collection made before aliases is a real
        collection under the name an alias needs: it is deleted first, so that first switch has a
        moment with no collection (a re-run finishes a switch cut short there).
        """
        with self._lock:
            self._refresh_aliases()  # what the server holds now, not what this process last read
            old = self._physical(collection)
            names = (collection, manifest_name(collection))
            if old == collection:
                self._drop_physical(collection)
                moves = []
            else:
                moves = [_delete_alias(n) for n in names if self._physical(n) != n]
            moves += [
                qm.CreateAliasOperation(create_alias=qm.CreateAlias(collection_name=target, alias_name=alias))
                for alias, target in zip(names, (build, manifest_name(build)), strict=True)
            ]
            self.client.update_collection_aliases(moves)
            self._aliases = None
            crashpoints.reached("switched")
            if old not in (collection, build):
                self._drop_physical(old)

    def count(self, collection: str) -> int:
        with self._lock:
            if not self._has_collection(collection):
                return 0
            return self.client.count(collection, exact=True).count

    def close(self) -> None:
        with self._lock:
            self.client.close()


def _delete_alias(name: str) -> qm.DeleteAliasOperation:
    return qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=name))


def _match(key: str, value: str) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def _where(must: Conditions | None, must_not: Conditions = ()) -> qm.Filter | None:
    return conditions_filter(qm.Filter, _match, must, must_not)


def _query_arguments(vector, sparse, k: int, flt, mode: str, fusion: FusionSpec) -> dict | None:
    """query_points arguments: dense or sparse search, or both prefetched and fused."""
    branches = []
    if vector is not None and mode != "sparse":
        branches.append((DENSE, vector.tolist()))
    # A query whose terms are all stopwords has no sparse vector: that branch finds nothing.
    if sparse is not None and sparse.indices and mode != "dense":
        branches.append((SPARSE, qm.SparseVector(indices=sparse.indices, values=sparse.values)))
    if not branches:
        return None
    if mode != "hybrid":
        using, query = branches[0]
        return {"query": query, "using": using, "query_filter": flt}
    limit = max(k, fusion.candidates)
    prefetch = [qm.Prefetch(query=query, using=using, limit=limit, filter=flt) for using, query in branches]
    if fusion.method == "rrf":
        fuse = qm.RrfQuery(rrf=qm.Rrf(k=fusion.rrf_k))
    else:
        fuse = qm.FusionQuery(fusion=qm.Fusion.DBSF)
    return {"prefetch": prefetch, "query": fuse, "query_filter": flt}


def _filter(filters: SearchFilter | None) -> qm.Filter | None:
    if filters is None or filters.is_empty():
        return None
    return qm.Filter(must=[qm.FieldCondition(key=k, match=qm.MatchAny(any=v)) for k, v in filters.any_of()])
