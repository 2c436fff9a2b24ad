"""Helpers for the sync, crash and hostile-input tests: folders, point snapshots, a flaky store."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import SHARED_DOCS

# Small, quick documents that always ingest (one or two chunks each).
PLAIN_DOCS = ("fake-text.txt", "README.rst", "codeblock.md")


def make_folder(folder: Path, names=PLAIN_DOCS) -> Path:
    """A fresh folder holding copies of the named shared documents (same relative paths)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in names:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_DOCS / name, target)
    return folder


def run_ingest(path: Path, collection: str = "docs", **params) -> dict:
    """The real ingest flow, in this process; the store is released afterwards."""
    from ragline.flows.ingest import ingest
    from ragline.store import close_stores

    try:
        return ingest(path=str(path), collection=collection, **params)
    finally:
        close_stores()


def open_test_store():
    from ragline.settings import get_settings
    from ragline.store import open_store

    return open_store(get_settings())


def snapshot(collection: str = "docs") -> dict[str, dict]:
    """Every point of the collection: id -> payload (what queries can see)."""
    from ragline.store import close_stores

    store = open_test_store()
    try:
        if store.collection_info(collection) is None:
            return {}
        # The edge store scrolls a shard, the server store a collection name.
        target = store._shard(collection) if hasattr(store, "_shard") else collection
        records = store._scroll(target, None, True, False)
        return {str(r.id): dict(r.payload) for r in records}
    finally:
        close_stores()


def manifest(root: Path, collection: str = "docs") -> dict[str, tuple]:
    """The manifest, without the stat fields that differ between copies of a folder."""
    from ragline.store import close_stores

    store = open_test_store()
    try:
        records = store.read_manifest(collection, str(root))
        return {s: (r.live_hash, r.chunks, r.seen_hash, r.failed_reason) for s, r in records.items()}
    finally:
        close_stores()


def rows(summary: dict) -> dict[str, dict]:
    return {row["source"]: row for row in summary["files"]}


class FlakyStore:
    """A VectorStore that fails the named write methods `failures` times (-1: always), then works.

    Wraps a real store; every other call goes straight through.
    """

    def __init__(self, store, methods: tuple[str, ...], failures: int):
        self.store = store
        self.methods = methods
        self.failures = failures
        self.failed: dict[str, int] = {}

    def _maybe_fail(self, method: str) -> None:
        if method not in self.methods:
            return
        done = self.failed.get(method, 0)
        if self.failures < 0 or done < self.failures:
            self.failed[method] = done + 1
            raise ConnectionError(f"injected fault in {method} (#{done + 1})")

    def ensure_collection(self, info):
        return self.store.ensure_collection(info)

    def collection_info(self, name):
        return self.store.collection_info(name)

    def upsert(self, collection, chunks, vectors, root, sparse=None):
        self._maybe_fail("upsert")
        return self.store.upsert(collection, chunks, vectors, root, sparse)

    def delete_document(self, collection, source, root, keep_hash=None):
        return self.store.delete_document(collection, source, root, keep_hash)

    def read_manifest(self, collection, root):
        return self.store.read_manifest(collection, root)

    def chunk_counts(self, collection, root):
        return self.store.chunk_counts(collection, root)

    def commit_documents(self, collection, root, records, staging):
        self._maybe_fail("commit_documents")
        return self.store.commit_documents(collection, root, records, staging)

    def write_manifest(self, collection, root, records):
        return self.store.write_manifest(collection, root, records)

    def remove_document(self, collection, root, source):
        self._maybe_fail("remove_document")
        return self.store.remove_document(collection, root, source)

    def search(self, collection, vector, k, filters=None, **options):
        return self.store.search(collection, vector, k, filters, **options)

    def drop_collection(self, name):
        return self.store.drop_collection(name)

    def count(self, collection):
        return self.store.count(collection)

    def close(self):
        return self.store.close()

    def __getattr__(self, name):  # every other store method goes straight through
        return getattr(self.store, name)
