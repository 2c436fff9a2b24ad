"""Embedded store on qdrant-edge: Qdrant's own engine in-process, one shard folder per collection.

Chosen as the default over qdrant-client's local mode: it indexes (HNSW) and upserts thousands of
points per second where the local mode manages ~150, and it speaks Qdrant's filter and query
model, so moving to a server changes only `store.kind`. Like every embedded engine it is owned by
one process at a time; ragline opens each shard once per process and serializes access to it.

Collection names can be aliases of a shard folder, like a Qdrant server's collection aliases:
`aliases.json` maps a name to the folder it reads. A rebuilt collection (ragline/ingestion/rebuild.py)
is switched to by replacing that file with os.replace, the one atomic step of the switch.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import qdrant_edge as qe

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
# Starts with a dot: no valid collection name (ragline.store.check_collection_name) makes this file.
ALIASES_FILE = ".aliases.json"


class EdgeStore(AliasedCollections, DocumentSync, SearchableStore):
    def __init__(self, path: str | Path):
        self.root = Path(path) / "edge"
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._lock = threading.RLock()
        aliases = self.root / ALIASES_FILE
        self._aliases: dict[str, str] = json.loads(aliases.read_text()) if aliases.exists() else {}

    # -- collections -------------------------------------------------------------------------

    def _physical(self, name: str) -> str:
        """The shard folder a collection name reads (itself, unless it is an alias)."""
        return self._aliases.get(check_collection_name(name, MAX_STORED_NAME), name)

    def _meta_path(self, name: str) -> Path:
        return self.root / f"{self._physical(name)}.json"

    def collection_info(self, name: str) -> CollectionInfo | None:
        meta = self._meta_path(name)
        if not meta.exists():
            return None
        return replace(CollectionInfo(**json.loads(meta.read_text())), name=name)

    def ensure_collection(self, info: CollectionInfo) -> CollectionInfo:
        with self._lock:
            existing = self.collection_info(info.name)
            if existing is not None:
                self._shard(info.name)
                return check_compatible(existing, info)
            physical = self._physical(info.name)
            config = qe.EdgeConfig(
                vectors={DENSE: qe.EdgeVectorParams(size=info.dimensions, distance=qe.Distance.Cosine)},
                sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            )
            shard = qe.EdgeShard.create(str(self.root / physical), config)
            for name in KEYWORD_FIELDS:
                shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
            self._shards[physical] = shard
            # Written last: a crash before this leaves no half-made collection that looks valid.
            tmp = self._meta_path(info.name).with_suffix(".tmp")
            tmp.write_text(json.dumps(info.__dict__))
            tmp.replace(self._meta_path(info.name))
            return info

    def _shard(self, name: str) -> qe.EdgeShard:
        physical = self._physical(name)
        if physical not in self._shards:
            if self.collection_info(name) is None:
                raise KeyError(f"collection {name!r} does not exist: ingest documents into it first")
            self._shards[physical] = qe.EdgeShard.load(str(self.root / physical))
        return self._shards[physical]

    # -- writes ------------------------------------------------------------------------------

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
                vector[SPARSE] = qe.SparseVector(sparse[i].indices, sparse[i].values)
            # Valid UTF-8 already: text and title by the chunker, source and root in display form.
            points.append(qe.Point(chunk.chunk_id, vector, {**chunk.payload(), "root": root}))
        with self._lock:
            shard = self._shard(collection)
            shard.update(qe.UpdateOperation.upsert_points(points))
            shard.flush()

    # -- sync primitives (ragline/store/documents.py) -------------------------------------------
    # The engine has one owning process, so no query from elsewhere can see a promotion half-done;
    # writes are not flushed one by one, the sync flushes before it records anything.

    def _has_collection(self, name: str) -> bool:
        return self.collection_info(name) is not None

    def _target(self, name: str) -> qe.EdgeShard:
        return self._shard(name)

    def _manifest_target(self, collection: str, create: bool) -> qe.EdgeShard | None:
        name = self._physical(manifest_name(collection))
        with self._lock:
            if name in self._shards:
                return self._shards[name]
            folder = self.root / name
            if folder.exists():
                self._shards[name] = qe.EdgeShard.load(str(folder))
            elif create:
                self._shards[name] = _create_manifest(folder)
            return self._shards.get(name)

    def _scroll_page(self, shard: qe.EdgeShard, must, offset, limit: int, with_payload, with_vectors: bool):
        request = qe.ScrollRequest(
            offset=offset, limit=limit, filter=_where(must), with_payload=with_payload, with_vector=with_vectors
        )
        return shard.scroll(request)

    def _upsert_points(self, shard: qe.EdgeShard, points) -> None:
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(p.id, p.vector, p.payload) for p in points]))

    def _delete_where(self, shard: qe.EdgeShard, must, must_not=()) -> None:
        shard.update(qe.UpdateOperation.delete_points_by_filter(_where(must, must_not)))

    def _delete_ids(self, shard: qe.EdgeShard, ids: list[str]) -> None:
        shard.update(qe.UpdateOperation.delete_points(ids))

    def _flush(self, shard: qe.EdgeShard) -> None:
        shard.flush()

    # -- reads -------------------------------------------------------------------------------

    def _query_points(self, collection, vector, sparse, k, filters, mode, fusion) -> list:
        request = _query_request(vector, sparse, k, _filter(filters), mode, fusion)
        return [] if request is None else self._shard(collection).query(request)

    # drop_collection: ragline/store/aliases.py

    def _refresh_aliases(self) -> None:
        pass  # the one process that owns the engine wrote the map it holds

    def _unalias(self, names: list[str]) -> None:
        self._write_aliases({a: p for a, p in self._aliases.items() if a not in names})

    def _drop_one(self, physical: str) -> None:
        shard = self._shards.pop(physical, None)
        if shard is not None:
            shard.close()
        (self.root / f"{physical}.json").unlink(missing_ok=True)
        shutil.rmtree(self.root / physical, ignore_errors=True)

    def switch_collection(self, collection: str, build: str) -> None:
        """Point `collection` and its manifest at the finished `build`, then drop the old data."""
        with self._lock:
            old = self._physical(collection)
            for shard in (build, manifest_name(build)):
                if shard in self._shards:
                    self._shards[shard].flush()
            aliases = {**self._aliases, collection: build, manifest_name(collection): manifest_name(build)}
            self._write_aliases(aliases)
            crashpoints.reached("switched")
            if old != build:
                self._drop_physical(old)

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        path = self.root / ALIASES_FILE
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump(aliases, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # the switch: a reader sees the old map or the new one
        self._aliases = aliases

    def count(self, collection: str) -> int:
        if self.collection_info(collection) is None:
            return 0
        with self._lock:
            return self._shard(collection).count(qe.CountRequest(exact=True))

    def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()


def _match(key: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(key=key, match=qe.MatchValue(value))


def _where(must: Conditions | None, must_not: Conditions = ()) -> qe.Filter | None:
    return conditions_filter(qe.Filter, _match, must, must_not)


def _create_manifest(folder: Path) -> qe.EdgeShard:
    # Built aside and renamed: a crash mid-creation leaves no folder that fails to load.
    building = folder.with_name(folder.name + ".creating")
    shutil.rmtree(building, ignore_errors=True)
    # Payload-only points; the engine insists on one vector kind, so a sparse one is declared.
    shard = qe.EdgeShard.create(str(building), qe.EdgeConfig(sparse_vectors={"unused": qe.EdgeSparseVectorParams()}))
    for name in MANIFEST_KEYWORD_FIELDS:
        shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
    shard.flush()
    shard.close()
    building.rename(folder)
    return qe.EdgeShard.load(str(folder))


def _query_request(vector, sparse, k: int, flt, mode: str, fusion: FusionSpec) -> qe.QueryRequest | None:
    """Dense or sparse nearest-neighbour search, or both prefetched and fused (RRF or DBSF)."""
    dense_query = qe.Query.Nearest(vector.tolist(), using=DENSE) if vector is not None else None
    # A query whose terms are all stopwords has no sparse vector: that branch finds nothing.
    sparse_query = None
    if sparse is not None and sparse.indices:
        sparse_query = qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values), using=SPARSE)
    if mode != "hybrid":
        query = dense_query if mode == "dense" else sparse_query
        return qe.QueryRequest(limit=k, query=query, filter=flt, with_payload=True) if query else None
    limit = max(k, fusion.candidates)
    prefetches = [qe.Prefetch(limit=limit, query=q, filter=flt) for q in (dense_query, sparse_query) if q]
    fuse = qe.Fusion.Rrf(k=fusion.rrf_k) if fusion.method == "rrf" else qe.Fusion.Dbsf()
    return qe.QueryRequest(limit=k, prefetches=prefetches, query=fuse, filter=flt, with_payload=True)


def _filter(filters: SearchFilter | None) -> qe.Filter | None:
    if filters is None or filters.is_empty():
        return None
    return qe.Filter(must=[qe.FieldCondition(key=k, match=qe.MatchAny(v)) for k, v in filters.any_of()])
