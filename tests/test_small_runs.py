"""Small runs: an ingest that would change nothing is answered without Prefect or a flow run
(ragline/ingestion/preview.py), and anything else still runs the flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import httpx
import pytest

from tests.conftest import run_cli
from tests.sync_support import rows, run_ingest

# The CLI's ingest in this process, then whether it imported Prefect (the last line).
CLI_IN_PROCESS = """
import sys
from ragline.cli.app import app
try:
    app(["ingest", sys.argv[1], "--collection", "docs", "--json"], standalone_mode=False)
finally:
    print("prefect imported" if "prefect" in sys.modules else "prefect not imported")
"""


@pytest.fixture
def folder(tmp_path, ragline_env, prefect_api):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Harbour fees are paid at the marina office before mooring overnight.\n")
    (docs / "b.txt").write_text("The lighthouse keeper logs every passing ship in a leather-bound book.\n")
    for path in docs.iterdir():  # older than discovery's racy window: the next run reuses the hashes
        os.utime(path, ns=(time.time_ns() - 10**12,) * 2)
    run_ingest(docs)  # the first run, in this process: the flow's own path
    return docs


def ingest_runs(api_url: str) -> int:
    body = {"flows": {"name": {"any_": ["ingest"]}}}
    response = httpx.post(f"{api_url}/flow_runs/count", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def test_unchanged_folder_is_answered_without_a_flow_run_and_a_change_runs_the_flow(folder, prefect_api):
    before = ingest_runs(prefect_api)
    proc = subprocess.run(
        [sys.executable, "-c", CLI_IN_PROCESS, str(folder)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    *printed, imported = proc.stdout.strip().splitlines()
    summary = json.loads("\n".join(printed))
    assert imported == "prefect not imported"
    assert summary["counts"] == {"unchanged": 2} and summary["parsed"] == 0 and summary["notes"] == []
    assert summary["collection"] == "docs" and summary["root"] == str(folder)
    assert ingest_runs(prefect_api) == before, "an unchanged folder must not create a flow run"

    (folder / "a.txt").write_text("Harbour fees went up this year; the marina office explains why.\n")
    result = run_cli("ingest", str(folder), "--collection", "docs", "--json")
    assert result.returncode == 0, result.stderr
    changed = json.loads(result.stdout)
    assert {s: r["status"] for s, r in rows(changed).items()} == {"a.txt": "ingested", "b.txt": "unchanged"}
    assert ingest_runs(prefect_api) == before + 1


def test_preview_leaves_a_busy_lock_leftover_staging_or_a_change_to_the_flow(folder):
    from ragline import file_locks
    from ragline.ingestion.locking import lock_file
    from ragline.ingestion.preview import preview_ingest
    from ragline.settings import get_settings
    from ragline.store import close_stores, open_store
    from ragline.store.manifest import staging_name

    settings = get_settings()
    try:
        assert preview_ingest(settings, str(folder), "docs").summary["counts"] == {"unchanged": 2}
        with open(lock_file(settings.data_dir, "docs"), "a+") as held:  # another run is writing
            assert file_locks.try_lock_exclusive(held)
            assert preview_ingest(settings, str(folder), "docs").summary is None
        assert preview_ingest(settings, str(folder), "docs", reembed=True).summary is None

        store = open_store(settings)
        info = store.collection_info("docs")
        store.ensure_collection(replace(info, name=staging_name("docs")))
        assert preview_ingest(settings, str(folder), "docs").summary is None, "a killed run's staging is the flow's"
        assert store.collection_info(staging_name("docs")) is not None, "the preview changes nothing"
        store.drop_collection(staging_name("docs"))

        (folder / "c.md").write_text("# Tides\n\nSpring tides follow the full and the new moon.\n")
        planned = preview_ingest(settings, str(folder), "docs")
        assert planned.summary is None and planned.file_types == {"md"}
    finally:
        close_stores()


def test_the_no_op_path_does_not_import_prefect():
    code = (
        "import sys, ragline.cli.app, ragline.ingestion.preview\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_parser_processes_warm_only_the_announced_types_and_skip_torch():
    code = (
        "import sys, ragline.parsing.worker\n"
        "loaded = {m for m in sys.modules if m.startswith('unstructured.partition.')}\n"
        "print('text' if 'unstructured.partition.text' in loaded else '', "
        "'pdf' if 'unstructured.partition.pdf' in loaded else '', 'torch' if 'torch' in sys.modules else '')\n"
        "print(sys.modules.get('torch', 'not imported') is None)\n"  # still hidden: `import torch` would fail
    )
    env = {**os.environ, "RAGLINE_PARSER_WARM_TYPES": "txt"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    warmed, torch_still_hidden = proc.stdout.strip().splitlines()[-2:]
    assert warmed.split() == ["text"], "only .txt's partitioner, and spaCy without torch"
    assert torch_still_hidden == "False", "torch must be importable again (the hi_res strategy uses it)"


def test_parses_during_a_background_warm_up_never_start_extra_parser_processes(tmp_path):
    """The CLI warms the pool in a thread while the flow already parses: the parses wait for the
    warming processes instead of starting more than the configured number."""
    import threading

    from ragline.parsing.options import ParseOptions
    from ragline.parsing.pool import ParserPool
    from ragline.records import SourceFile

    files = []
    for i in range(4):
        path = tmp_path / f"note-{i}.txt"
        path.write_text(f"Note {i}. The river stone number {i} is grey.\n")
        files.append(SourceFile(str(path), path.name, path.stat().st_size, "h", "txt"))
    pool = ParserPool(ParseOptions(), workers=2)
    try:
        warming = threading.Thread(target=pool.warm)
        parses = [threading.Thread(target=pool.parse, args=(f, 300)) for f in files]
        for thread in (warming, *parses):
            thread.start()
        for thread in (warming, *parses):
            thread.join(timeout=300)
        assert len(pool._idle) == 2 and not pool._busy  # more would be processes nobody stops
    finally:
        pool.close()
