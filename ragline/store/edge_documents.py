"""Document-sync operations of the embedded store: manifest, staging, atomic promotion.

A mixin of EdgeStore (see ragline/store/manifest.py for the design). Everything runs under the
store's lock, which every search also takes: in this process a query runs either before or after
a document's promotion, never in the middle of it. The embedded engine has one owning process,
so there is no other process whose queries could interleave.
"""

from __future__ import annotations

import shutil

import qdrant_edge as qe

from ragline import crashpoints
from ragline.store.manifest import (
    MANIFEST_KEYWORD_FIELDS,
    DocumentRecord,
    manifest_name,
    record_point_id,
)

PAGE = 1000


def _match(key: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(key=key, match=qe.MatchValue(value))


class EdgeSyncMixin:
    # -- manifest ----------------------------------------------------------------------------

    def _manifest(self, collection: str, create: bool) -> qe.EdgeShard | None:
        name = manifest_name(collection)
        with self._lock:
            if name in self._shards:
                return self._shards[name]
            folder = self.root / name
            if folder.exists():
                self._shards[name] = qe.EdgeShard.load(str(folder))
            elif create:
                self._shards[name] = self._create_manifest(folder)
            return self._shards.get(name)

    def _create_manifest(self, folder) -> qe.EdgeShard:
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

    def read_manifest(self, collection: str, root: str) -> dict[str, DocumentRecord]:
        """Every document recorded under `root`, by source."""
        with self._lock:
            shard = self._manifest(collection, create=False)
            if shard is None:
                return {}
            records = self._scroll(shard, qe.Filter(must=[_match("root", root)]), True, False)
        return {r.payload["source"]: DocumentRecord.from_payload(r.payload) for r in records}

    def write_manifest(self, collection: str, root: str, records: list[DocumentRecord]) -> None:
        """Upsert manifest records as they are (no chunk changes)."""
        if not records:
            return
        points = [qe.Point(record_point_id(root, r.source), {}, r.payload(root)) for r in records]
        with self._lock:
            shard = self._manifest(collection, create=True)
            shard.update(qe.UpdateOperation.upsert_points(points))
            shard.flush()

    # -- reads -------------------------------------------------------------------------------

    def _scroll(self, shard: qe.EdgeShard, flt: qe.Filter, payload, vectors: bool) -> list:
        found, offset = [], None
        while True:
            page, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=PAGE, filter=flt, with_payload=payload, with_vector=vectors)
            )
            found.extend(page)
            if offset is None:
                return found

    def chunk_counts(self, collection: str, root: str) -> dict[str, dict[str, int]]:
        """source -> {content hash: number of chunks} for every point of `collection` under `root`."""
        counts: dict[str, dict[str, int]] = {}
        with self._lock:
            if self.collection_info(collection) is None:
                return counts
            flt = qe.Filter(must=[_match("root", root)])
            for record in self._scroll(self._shard(collection), flt, ["source", "doc_hash"], False):
                versions = counts.setdefault(record.payload["source"], {})
                versions[record.payload["doc_hash"]] = versions.get(record.payload["doc_hash"], 0) + 1
        return counts

    # -- writes ------------------------------------------------------------------------------

    def commit_documents(
        self, collection: str, root: str, records: list[DocumentRecord], staging: str | None
    ) -> None:
        """Make each record's `live_hash` the only visible version of its document, then record it.

        Per document, under the lock: copy its staged chunks into the collection, then delete its
        other versions. The manifest is written after the collection is flushed, so a record
        never claims chunks that a crash lost. A record with `failed_reason` keeps its live
        version and only loses stray ones (e.g. half-promoted by a killed run).
        """
        with self._lock:
            if self.collection_info(collection) is not None:
                for record in records:
                    self._promote(collection, root, record, staging)
                self._shard(collection).flush()
            self.write_manifest(collection, root, records)

    def _promote(self, collection: str, root: str, record: DocumentRecord, staging: str | None) -> None:
        shard = self._shard(collection)
        keep = record.live_hash if record.chunks else None
        if keep and record.failed_reason is None:
            if staging is None or self.collection_info(staging) is None:
                raise RuntimeError(f"no staged chunks for {record.source}: re-run the ingest")
            flt = qe.Filter(must=[_match("source", record.source), _match("root", root), _match("doc_hash", keep)])
            staged = self._scroll(self._shard(staging), flt, True, True)
            if len(staged) != record.chunks:
                raise RuntimeError(
                    f"staging holds {len(staged)} of the {record.chunks} chunks of {record.source}: "
                    "re-run the ingest"
                )
            shard.update(qe.UpdateOperation.upsert_points([qe.Point(p.id, p.vector, p.payload) for p in staged]))
            crashpoints.reached("commit")
        must = [_match("source", record.source), _match("root", root)]
        must_not = [_match("doc_hash", keep)] if keep else None
        shard.update(qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=must, must_not=must_not)))

    def remove_document(self, collection: str, root: str, source: str) -> None:
        """Delete every chunk of a document that left the source, then its manifest record."""
        with self._lock:
            if self.collection_info(collection) is not None:
                self.delete_document(collection, source, root)
            shard = self._manifest(collection, create=False)
            if shard is not None:
                shard.update(qe.UpdateOperation.delete_points([record_point_id(root, source)]))
                shard.flush()
