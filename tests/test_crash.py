"""Crash safety and store faults: a run killed with SIGKILL, or whose store keeps failing, then
re-run, ends in exactly the state of one clean run (same point ids, payloads and manifest)."""

from __future__ import annotations

import shutil
import signal

import pytest

from tests.conftest import needs_shared_data, run_cli
from tests.sync_support import FlakyStore, make_folder, manifest, run_ingest, snapshot

pytestmark = [needs_shared_data()]

V1 = ("fake-text.txt", "README.rst", "codeblock.md", "simple.docx", "handbook-1p.docx")
ADDED = ("README.org", "fake-html.html")
EDITED_TEXT = "Lighthouse keepers trim the wick at dusk and log the weather at dawn.\n"


def to_v1(folder):
    return make_folder(folder, V1)


def to_v2(folder):
    """An edit, a deletion and two additions: every kind of sync work in one run."""
    (folder / "fake-text.txt").write_text(EDITED_TEXT)
    (folder / "README.rst").unlink()
    from tests.conftest import SHARED_DOCS

    for name in ADDED:
        shutil.copyfile(SHARED_DOCS / name, folder / name)


def ingest_into(data_dir, folder) -> tuple[dict, dict]:
    """A clean ingest of `folder` into a store of its own; its (snapshot, manifest)."""
    import os

    saved = os.environ.get("RAGLINE_DATA_DIR")
    os.environ["RAGLINE_DATA_DIR"] = str(data_dir)
    try:
        run_ingest(folder)
        return snapshot(), manifest(folder)
    finally:
        if saved is None:
            os.environ.pop("RAGLINE_DATA_DIR", None)
        else:
            os.environ["RAGLINE_DATA_DIR"] = saved


@pytest.fixture(scope="module")
def scenario(prefect_api, tmp_path_factory):
    """The folder (one fixed path, so payload roots match), the clean-run state of version 2, and
    a store holding a clean ingest of version 1 (ingested once, copied for each test)."""
    folder = tmp_path_factory.mktemp("crash") / "docs"
    to_v1(folder)
    v1_store = tmp_path_factory.mktemp("v1-store")
    v1_state = ingest_into(v1_store, folder)
    to_v2(folder)
    reference = ingest_into(tmp_path_factory.mktemp("clean-store"), folder)
    assert reference[0] and len(reference[1]) == len(V1) - 1 + len(ADDED)
    assert v1_state[0] and len(v1_state[1]) == len(V1)
    return folder, reference, v1_store, v1_state


@pytest.fixture
def synced_v1(scenario, ragline_env):
    """A store holding a clean ingest of version 1 (a copy), with the folder at version 2."""
    folder, reference, v1_store, v1_state = scenario
    shutil.copytree(v1_store, ragline_env)
    assert (snapshot(), manifest(folder)) == v1_state  # the copy is the store it was copied from
    to_v1(folder)
    to_v2(folder)
    return folder, reference, v1_state


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["parse:2", "embed:1", "staged:1", "commit:3", "finalize:1"])
def test_sigkill_then_rerun_equals_a_clean_run(synced_v1, crash_at):
    folder, reference, v1_state = synced_v1
    killed = run_cli("ingest", str(folder), "--collection", "docs", env={"RAGLINE_CRASH_AT": crash_at})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    crashed = snapshot()
    assert crashed != reference[0]
    if crash_at == "commit:3":
        # Killed between writing the edited file's new chunks and deleting its old ones.
        versions = {p["doc_hash"] for p in crashed.values() if p["source"] == "fake-text.txt"}
        assert len(versions) == 2
    summary = run_ingest(folder)
    assert snapshot() == reference[0]
    assert manifest(folder) == reference[1]
    assert "failed" not in summary["counts"]


def _inject(monkeypatch, methods, failures) -> FlakyStore:
    import ragline.tasks.ingest as ingest_tasks
    from ragline.store import open_store

    wrapped: list[FlakyStore] = []

    def flaky_open_store(settings):
        store = open_store(settings)
        if not wrapped or wrapped[0].store is not store:
            wrapped[:] = [FlakyStore(store, methods, failures)]
        return wrapped[0]

    monkeypatch.setattr(ingest_tasks, "open_store", flaky_open_store)
    monkeypatch.setenv("RAGLINE_TASKS__RETRIES", "3")
    monkeypatch.setenv("RAGLINE_TASKS__RETRY_DELAY_S", "0")
    return wrapped


def test_transient_store_faults_are_retried(synced_v1, monkeypatch):
    folder, reference, _ = synced_v1
    wrapped = _inject(monkeypatch, ("upsert", "commit_documents", "remove_document"), failures=2)
    summary = run_ingest(folder)
    assert wrapped[0].failed == {"upsert": 2, "commit_documents": 2, "remove_document": 2}
    assert "failed" not in summary["counts"]
    assert snapshot() == reference[0]
    assert manifest(folder) == reference[1]


def test_a_store_that_keeps_failing_stops_the_run_and_loses_nothing(synced_v1, monkeypatch):
    from ragline.ingestion.plan import IngestError

    folder, reference, v1_state = synced_v1
    _inject(monkeypatch, ("commit_documents",), failures=-1)
    with pytest.raises(IngestError, match=r"injected fault in commit_documents.*re-run to resume"):
        run_ingest(folder)
    assert snapshot() == v1_state[0]
    assert manifest(folder) == v1_state[1]
    import ragline.tasks.ingest as ingest_tasks
    from ragline.store import open_store

    monkeypatch.setattr(ingest_tasks, "open_store", open_store)
    run_ingest(folder)
    assert snapshot() == reference[0]
