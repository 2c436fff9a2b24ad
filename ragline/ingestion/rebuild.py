"""Rebuild a collection with a new embedding model aside, then switch to it at once (shadow build).

Vectors of two models cannot be searched together, so a change of `embedding.model` cannot
replace documents one at a time like an edit. The run builds the collection anew under a build
name (`<collection>__build-<model hash>`, with its own manifest and staging) while the collection
keeps answering queries, and switches when the build is complete: one atomic step (a pointer file
replaced with os.replace on the embedded engine, a collection alias on a Qdrant server), after
which the old collection is dropped. A failed or killed rebuild leaves the old collection serving;
the next run (with or without `--reembed`) resumes the build where it stopped, since the build
has a manifest like any collection.

A build covers whole ingest roots. The switch waits until every root of the live collection has
been rebuilt, and refuses, like a sync (ragline/ingestion/plan.py), when the listing was
incomplete or the build would hold less than `1 - ingest.max_delete_fraction` of the documents.
"""

from __future__ import annotations

import hashlib
import logging

from ragline import crashpoints
from ragline.store import EmbedderMismatchError, VectorStore

logger = logging.getLogger(__name__)

BUILD_INFIX = "__build-"


class RebuildScopeError(ValueError):
    """A rebuild was asked for a file or subfolder; it re-embeds whole ingest roots."""


def build_name(collection: str, embedder_name: str) -> str:
    """The same name for the same model, so a killed rebuild is resumed, not restarted."""
    return f"{collection}{BUILD_INFIX}{hashlib.sha256(embedder_name.encode()).hexdigest()[:10]}"


def choose_target(store: VectorStore, collection: str, embedder_name: str, reembed: bool) -> str:
    """The collection a run writes: `collection`, or its rebuild for `embedder_name`."""
    info = store.collection_info(collection)
    if info is not None and info.embedder == embedder_name:
        return collection
    build = build_name(collection, embedder_name)
    building = store.collection_info(build) is not None
    if info is None:
        return build if building else collection  # a switch cut short: finish it
    if not reembed and not building:
        raise EmbedderMismatchError(
            f"collection {collection!r} was built with {info.embedder}, but the settings now "
            f"use {embedder_name}; vectors of two models cannot be searched together. Re-run "
            "with --reembed to rebuild the collection with the new model (it keeps answering "
            "until the rebuild is complete), restore embedding.model, or ingest into another "
            "collection (--collection NAME)."
        )
    logger.warning(
        "%s the rebuild of %s with %s (built with %s); it keeps answering until the rebuild is complete",
        "resuming" if building else "starting",
        collection,
        embedder_name,
        info.embedder,
    )
    return build


def finish_rebuild(
    store: VectorStore, collection: str, build: str, listing_complete: bool, max_fraction: float, allow: bool
) -> str:
    """Switch `collection` to its finished build; a line saying what happened (or why not yet)."""
    info = store.collection_info(build)
    if info is None:
        return f"nothing was rebuilt for {collection!r} (no document had text); it was left as it was"
    live = store.documents_per_root(collection) if store.collection_info(collection) is not None else {}
    built = store.documents_per_root(build)
    missing = sorted(set(live) - set(built))
    if missing:
        return (
            f"collection {collection!r} is being rebuilt with {info.embedder}; it keeps answering with "
            f"the old model until these folders are rebuilt too: {', '.join(missing)} "
            f"(run `ragline ingest FOLDER --collection {collection} --reembed` for each)"
        )
    if not listing_complete:
        return f"the rebuild of {collection!r} was not switched to: the folder listing was empty or incomplete"
    live_docs, built_docs = sum(live.values()), sum(built.values())
    if live_docs and built_docs < (1 - max_fraction) * live_docs and not allow:
        return (
            f"the rebuild of {collection!r} holds {built_docs} documents where the collection has "
            f"{live_docs} (ingest.max_delete_fraction = {max_fraction:g}); not switched. If that is "
            "right, re-run with --allow-mass-delete"
        )
    crashpoints.reached("switch")
    store.switch_collection(collection, build)
    return f"collection {collection!r} now answers from its rebuild with {info.embedder}"
