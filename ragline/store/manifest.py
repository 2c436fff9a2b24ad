"""The per-collection document manifest: which version of each document queries see.

Each record is a `ragline.records.DocumentRecord`; this module names the companion collections
and the records' point ids.

A collection `C` comes with two companions in the same store:

- `C__manifest` holds one payload-only point per (root, source): the content hash whose chunks
  are live in `C`, how many there are, and what the last run saw on disk. A document is complete
  exactly when it has a record: the record is written only after all of its chunks are in `C`
  and its other versions are gone, so a run killed half-way through never leaves a record that
  claims chunks which are not there, and the next run redoes that document.
- `C__staging` receives the chunks of documents being (re)ingested while they are embedded.
  Queries never read it; a document moves from staging into `C` in one step under the store's
  lock (`commit_documents` in ragline/store/documents.py), which is why a query sees the old or
  the new version of a document, never none and never both (through a Qdrant server, other
  processes may briefly see both: see ragline/store/qdrant_server.py). Staging belongs to the
  one ingest run that holds the collection's ingest lock (ragline.ingestion.locking) and is dropped at the
  start and end of it.
"""

from __future__ import annotations

import uuid

MANIFEST_SUFFIX = "__manifest"
STAGING_SUFFIX = "__staging"
MANIFEST_NAMESPACE = uuid.UUID("0f3c9b8e-3f57-4d0c-a7f4-2f61d1b1b6a4")
# Payload fields of manifest points the stores index (lookups are by root, then source).
MANIFEST_KEYWORD_FIELDS = ("root", "source")


def manifest_name(collection: str) -> str:
    return collection + MANIFEST_SUFFIX


def staging_name(collection: str) -> str:
    return collection + STAGING_SUFFIX


def record_point_id(root: str, source: str) -> str:
    return str(uuid.uuid5(MANIFEST_NAMESPACE, f"{root}\x00{source}"))
