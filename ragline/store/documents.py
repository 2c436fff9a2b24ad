"""Document sync, written once for every store: manifest, chunk counts, promotion, removal.

The design (a manifest companion per collection, a staging collection, promotion one document at a
time) is in ragline/store/manifest.py. This module holds the algorithm; a store subclasses
`DocumentSync` and implements its primitives, which only translate to the engine's API.

The primitives address a collection through a *target*: whatever the engine needs to reach it
(the embedded store's shard, the server store's collection name). Filters are backend-neutral:
`must` and `must_not` are sequences of (payload field, value) pairs that must all match / must
none match.

Every operation holds the store's lock (`self._lock`, re-entrant), which the store's searches also
take: in this process a query runs before or after a document's promotion, never during it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from ragline import crashpoints
from ragline.records import DocumentRecord
from ragline.store.base import utf8_payload
from ragline.store.manifest import record_point_id

PAGE = 1000

Conditions = Sequence[tuple[str, str]]


def conditions_filter(make_filter: Callable[..., Any], make_match: Callable[[str, str], Any], must, must_not=()):
    """An engine's filter (`make_filter(must=..., must_not=...)`) of (field, value) conditions, each
    made by `make_match`; None when there is no condition."""
    if not must and not must_not:
        return None
    return make_filter(
        must=[make_match(*c) for c in must or ()] or None, must_not=[make_match(*c) for c in must_not] or None
    )


class StoredPoint(NamedTuple):
    """A point to write: the shape of what the stores' scrolls return (id, vector, payload)."""

    id: str
    vector: Any
    payload: dict


class DocumentSync(ABC):
    """The VectorStore's document-sync methods over a store's primitives."""

    _lock: threading.RLock

    # -- primitives --------------------------------------------------------------------------

    @abstractmethod
    def _has_collection(self, name: str) -> bool:
        """Whether the collection (or staging collection) exists."""

    @abstractmethod
    def _target(self, name: str) -> Any:
        """How the primitives reach an existing collection."""

    @abstractmethod
    def _manifest_target(self, collection: str, create: bool) -> Any | None:
        """The manifest of `collection`, made when `create`; None when absent and not made."""

    @abstractmethod
    def _scroll_page(
        self, target, must: Conditions | None, offset, limit: int, with_payload, with_vectors: bool
    ) -> tuple[list, Any]:
        """Up to `limit` matching points from `offset` on, and the offset of the next page (None:
        no more). Points have `.id`, `.vector`, `.payload`; `with_payload` may name fields."""

    @abstractmethod
    def _upsert_points(self, target, points: Iterable) -> None:
        """Write points given as anything with `.id`, `.vector` and `.payload`."""

    @abstractmethod
    def _delete_where(self, target, must: Conditions, must_not: Conditions = ()) -> None: ...

    @abstractmethod
    def _delete_ids(self, target, ids: list[str]) -> None: ...

    @abstractmethod
    def _flush(self, target) -> None:
        """Make the writes so far durable before anything that relies on them is recorded."""

    # -- reads -------------------------------------------------------------------------------

    def _scroll(self, target, must: Conditions | None, with_payload, with_vectors: bool) -> list:
        found, offset = [], None
        while True:
            page, offset = self._scroll_page(target, must, offset, PAGE, with_payload, with_vectors)
            found.extend(page)
            if offset is None:
                return found

    def read_manifest(self, collection: str, root: str) -> dict[str, DocumentRecord]:
        """Every document recorded under `root`, by source."""
        with self._lock:
            target = self._manifest_target(collection, create=False)
            if target is None:
                return {}
            records = self._scroll(target, [("root", root)], True, False)
        return {r.payload["source"]: DocumentRecord.from_payload(r.payload) for r in records}

    def documents_per_root(self, collection: str) -> dict[str, int]:
        """root -> number of documents recorded under it: the ingest roots the collection holds."""
        with self._lock:
            target = self._manifest_target(collection, create=False)
            records = [] if target is None else self._scroll(target, None, ["root"], False)
        roots: dict[str, int] = {}
        for record in records:
            roots[record.payload["root"]] = roots.get(record.payload["root"], 0) + 1
        return roots

    def chunk_counts(self, collection: str, root: str) -> dict[str, dict[str, int]]:
        """source -> {content hash: number of chunks} for every point of `collection` under `root`."""
        counts: dict[str, dict[str, int]] = {}
        with self._lock:
            if not self._has_collection(collection):
                return counts
            records = self._scroll(self._target(collection), [("root", root)], ["source", "doc_hash"], False)
        for record in records:
            versions = counts.setdefault(record.payload["source"], {})
            versions[record.payload["doc_hash"]] = versions.get(record.payload["doc_hash"], 0) + 1
        return counts

    # -- writes ------------------------------------------------------------------------------

    def write_manifest(self, collection: str, root: str, records: list[DocumentRecord]) -> None:
        """Upsert manifest records as they are (no chunk changes)."""
        if not records:
            return
        points = [StoredPoint(record_point_id(root, r.source), {}, utf8_payload(r.payload(root))) for r in records]
        with self._lock:
            target = self._manifest_target(collection, create=True)
            self._upsert_points(target, points)
            self._flush(target)

    def commit_documents(self, collection: str, root: str, records: list[DocumentRecord], staging: str | None) -> None:
        """Make each record's `live_hash` the only visible version of its document, then record it.

        Per document: copy its staged chunks into the collection, then delete its other versions.
        The manifest is written after the collection is flushed, so a record never claims chunks
        that a crash lost. A record with `failed_reason` keeps its live version and only loses
        stray ones (e.g. half-promoted by a killed run).
        """
        with self._lock:
            if self._has_collection(collection):
                target = self._target(collection)
                # Looked up once per commit, not per document (an HTTP request on a Qdrant server).
                staged_in = self._target(staging) if staging is not None and self._has_collection(staging) else None
                for record in records:
                    self._promote(target, root, record, staged_in)
                self._flush(target)
            self.write_manifest(collection, root, records)

    def _promote(self, target, root: str, record: DocumentRecord, staged_in) -> None:
        keep = record.live_hash if record.chunks else None
        if keep and record.failed_reason is None:
            if staged_in is None:
                raise RuntimeError(f"no staged chunks for {record.source}: re-run the ingest")
            must = [("source", record.source), ("root", root), ("doc_hash", keep)]
            staged = self._scroll(staged_in, must, True, True)
            if len(staged) != record.chunks:
                raise RuntimeError(
                    f"staging holds {len(staged)} of the {record.chunks} chunks of {record.source}: re-run the ingest"
                )
            self._upsert_points(target, staged)
            crashpoints.reached("commit")
        self._delete_versions(target, record.source, root, keep)

    def _delete_versions(self, target, source: str, root: str, keep_hash: str | None) -> None:
        must_not = [("doc_hash", keep_hash)] if keep_hash else ()
        self._delete_where(target, [("source", source), ("root", root)], must_not)

    def delete_document(self, collection: str, source: str, root: str, keep_hash: str | None = None) -> None:
        """Delete a document's points; with keep_hash, only those of its other versions."""
        with self._lock:
            target = self._target(collection)
            self._delete_versions(target, source, root, keep_hash)
            self._flush(target)

    def remove_document(self, collection: str, root: str, source: str) -> None:
        """Delete every chunk of a document that left the source, then its manifest record."""
        with self._lock:
            if self._has_collection(collection):
                self.delete_document(collection, source, root)
            target = self._manifest_target(collection, create=False)
            if target is not None:
                self._delete_ids(target, [record_point_id(root, source)])
                self._flush(target)
