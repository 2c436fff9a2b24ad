"""Document-sync operations of the Qdrant-server store: manifest, staging, promotion.

A mixin of QdrantServerStore (see ragline/store/manifest.py for the design). Queries made through
this store object take the same lock, so in this process they never see a promotion half-done.
A remote Qdrant server has no multi-operation transactions: a document is promoted by upserting
its new version and then deleting the others, so a client in another process can, for the moment
between the two requests, see both versions of that document, never none. The manifest is written
after both have completed (`wait=True`).
"""

from __future__ import annotations

from qdrant_client import models as qm

from ragline import crashpoints
from ragline.store.manifest import (
    MANIFEST_KEYWORD_FIELDS,
    DocumentRecord,
    manifest_name,
    record_point_id,
)

PAGE = 1000


def _match(key: str, value: str) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


class QdrantSyncMixin:
    def _ensure_manifest(self, collection: str) -> str:
        name = manifest_name(collection)
        if not self.client.collection_exists(name):
            self.client.create_collection(name, vectors_config={})
            for field_name in MANIFEST_KEYWORD_FIELDS:
                self.client.create_payload_index(name, field_name, qm.PayloadSchemaType.KEYWORD)
        return name

    def _scroll(self, collection: str, flt: qm.Filter, payload, vectors: bool) -> list:
        found, offset = [], None
        while True:
            page, offset = self.client.scroll(
                collection, scroll_filter=flt, limit=PAGE, offset=offset, with_payload=payload, with_vectors=vectors
            )
            found.extend(page)
            if offset is None:
                return found

    def read_manifest(self, collection: str, root: str) -> dict[str, DocumentRecord]:
        """Every document recorded under `root`, by source."""
        with self._lock:
            name = manifest_name(collection)
            if not self.client.collection_exists(name):
                return {}
            records = self._scroll(name, qm.Filter(must=[_match("root", root)]), True, False)
        return {r.payload["source"]: DocumentRecord.from_payload(r.payload) for r in records}

    def chunk_counts(self, collection: str, root: str) -> dict[str, dict[str, int]]:
        """source -> {content hash: number of chunks} for every point of `collection` under `root`."""
        counts: dict[str, dict[str, int]] = {}
        with self._lock:
            if not self.client.collection_exists(collection):
                return counts
            records = self._scroll(collection, qm.Filter(must=[_match("root", root)]), ["source", "doc_hash"], False)
        for record in records:
            versions = counts.setdefault(record.payload["source"], {})
            versions[record.payload["doc_hash"]] = versions.get(record.payload["doc_hash"], 0) + 1
        return counts

    def commit_documents(
        self, collection: str, root: str, records: list[DocumentRecord], staging: str | None
    ) -> None:
        """Make each record's `live_hash` the only visible version of its document, then record it.

        A record with `failed_reason` keeps its live version and only loses stray ones.
        """
        with self._lock:
            if self.client.collection_exists(collection):
                for record in records:
                    self._promote(collection, root, record, staging)
            self.write_manifest(collection, root, records)

    def write_manifest(self, collection: str, root: str, records: list[DocumentRecord]) -> None:
        """Upsert manifest records as they are (no chunk changes)."""
        if not records:
            return
        points = [
            qm.PointStruct(id=record_point_id(root, r.source), vector={}, payload=r.payload(root))
            for r in records
        ]
        with self._lock:
            self.client.upsert(self._ensure_manifest(collection), points=points, wait=True)

    def _promote(self, collection: str, root: str, record: DocumentRecord, staging: str | None) -> None:
        keep = record.live_hash if record.chunks else None
        if keep and record.failed_reason is None:
            if staging is None or not self.client.collection_exists(staging):
                raise RuntimeError(f"no staged chunks for {record.source}: re-run the ingest")
            flt = qm.Filter(must=[_match("source", record.source), _match("root", root), _match("doc_hash", keep)])
            staged = self._scroll(staging, flt, True, True)
            if len(staged) != record.chunks:
                raise RuntimeError(
                    f"staging holds {len(staged)} of the {record.chunks} chunks of {record.source}: "
                    "re-run the ingest"
                )
            points = [qm.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in staged]
            self.client.upsert(collection, points=points, wait=True)
            crashpoints.reached("commit")
        must = [_match("source", record.source), _match("root", root)]
        must_not = [_match("doc_hash", keep)] if keep else None
        selector = qm.FilterSelector(filter=qm.Filter(must=must, must_not=must_not))
        self.client.delete(collection, points_selector=selector, wait=True)

    def remove_document(self, collection: str, root: str, source: str) -> None:
        """Delete every chunk of a document that left the source, then its manifest record."""
        with self._lock:
            if self.client.collection_exists(collection):
                self.delete_document(collection, source, root)
            name = manifest_name(collection)
            if self.client.collection_exists(name):
                selector = qm.PointIdsList(points=[record_point_id(root, source)])
                self.client.delete(name, points_selector=selector, wait=True)
