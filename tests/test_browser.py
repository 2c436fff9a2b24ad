"""The Prefect UI shows an `ask` run and its answer artifact: headless Chromium against a real server.

Screenshots are kept under test-artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import html
import re
import shutil
import struct
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.serving import QUESTION, run_artifacts, small_docs

pytestmark = pytest.mark.slow
ARTIFACT_DIR = REPO_ROOT / "test-artifacts"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def chromium(binary: str, url: str, profile, *mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "--virtual-time-budget=20000",
            *mode,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_flow_run_page_and_answer_artifact_render(prefect_api, ragline_env, tmp_path):
    binary = find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed and could not be: apt-get install -y chromium")
    from ragline.flows.ingest import ingest
    from ragline.flows.query import ask

    corpus = small_docs(tmp_path)
    assert ingest(path=str(corpus))["chunks"] > 0
    state = ask(question=QUESTION, return_state=True)
    assert state.is_completed()
    answer = state.result()
    flow_run_id = str(state.state_details.flow_run_id)
    artifact = next(a for a in run_artifacts(prefect_api, flow_run_id) if a["type"] == "markdown")

    ui = prefect_api.removesuffix("/api")
    ARTIFACT_DIR.mkdir(exist_ok=True)
    pages = {
        "flow-run": f"{ui}/runs/flow-run/{flow_run_id}",
        "answer-artifact": f"{ui}/artifacts/artifact/{artifact['id']}",
    }
    for name, url in pages.items():
        shot = ARTIFACT_DIR / f"ask-{name}.png"
        shot.unlink(missing_ok=True)
        result = chromium(binary, url, tmp_path / f"profile-{name}", f"--screenshot={shot}")
        assert shot.exists(), result.stderr[-2000:]
        width, height = png_size(shot)
        assert (width, height) == (1400, 1000)
        assert shot.stat().st_size > 20_000, "the screenshot is (nearly) blank"

    artifact_text = visible_text(chromium(binary, pages["answer-artifact"], tmp_path / "p-dom", "--dump-dom").stdout)
    assert QUESTION in artifact_text and "Citations" in artifact_text, artifact_text[-2000:]
    for word in re.findall(r"[A-Za-z]{4,}", answer["answer"])[:6]:
        assert word in artifact_text, word
    for citation in answer["citations"]:
        assert Path(citation["source"]).name in artifact_text
    run = httpx.get(f"{prefect_api}/flow_runs/{flow_run_id}", timeout=30).json()
    run_text = visible_text(chromium(binary, pages["flow-run"], tmp_path / "p-run-dom", "--dump-dom").stdout)
    assert run["name"] in run_text and "Completed" in run_text  # the graph (and its artifact dot) is a canvas


def visible_text(dom: str) -> str:
    """The page's text as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    text = html.unescape(re.sub(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", " ", dom, flags=re.S))
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Driving the UI as a user does: real Chromium through Playwright (pip package `playwright`, the
# system Chromium from scripts/setup-test-tools.sh; Playwright's own browser download is not used).
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def browser_page():
    from playwright import sync_api as playwright_api  # the test extra installs it

    binary = find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed and could not be: apt-get install -y chromium")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def screenshot(page, name: str) -> None:
    ARTIFACT_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACT_DIR / f"{name}.png"))


def open_tab(page, name: str) -> str:
    """Click a tab of the flow-run page; returns the page's text once `name` content is shown."""
    page.get_by_text(name, exact=True).first.click()
    page.wait_for_load_state("networkidle")
    return page.locator("body").inner_text()


def test_ask_from_the_run_button_shows_the_answer_artifact(prefect_api, ragline_env, tmp_path, request, monkeypatch):
    """Deployments -> ask -> Run -> Custom run: the question typed in the form is answered by the
    serve runner (deployments/serve.py, in a thread here), and the run page shows the answer."""
    import asyncio

    from ragline.flows.ingest import ingest
    from ragline.flows.query import ask
    from ragline.store import close_stores
    from tests.test_operations import InThreadServer

    monkeypatch.setenv("RAGLINE_GENERATION__MAX_TOKENS", "24")  # the answer's length is not under test
    corpus = small_docs(tmp_path)
    assert ingest(path=str(corpus))["chunks"] > 0

    async def register():
        return await (await ask.ato_deployment(name="browser-run-button", enforce_parameter_schema=True)).aapply()

    deployment_uuid = asyncio.run(register())
    deployment_id = str(deployment_uuid)
    page, ui = request.getfixturevalue("browser_page"), prefect_api.removesuffix("/api")  # after asyncio.run
    server = InThreadServer({deployment_uuid: ask})
    try:
        page.goto(f"{ui}/deployments/deployment/{deployment_id}", wait_until="networkidle")
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Custom run", exact=True).click()
        page.get_by_text("The question to answer from the ingested documents.").wait_for()
        page.wait_for_load_state("networkidle")  # a field filled before the form settles can be reset
        page.locator("textarea").first.fill(QUESTION)
        screenshot(page, "ask-run-form")
        submit_run_form(page, prefect_api, deployment_id)
        run = wait_for_deployment_run(prefect_api, deployment_id, timeout_s=300)
    finally:
        server.stop()
        close_stores()
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["parameters"]["question"] == QUESTION
    page.goto(f"{ui}/runs/flow-run/{run['id']}", wait_until="networkidle")
    open_tab(page, "Artifacts")
    page.get_by_text("answer-ragline").first.wait_for()
    screenshot(page, "ask-run-button-artifacts")
    page.get_by_text("answer-ragline").first.click()
    page.get_by_text("Citations").first.wait_for()
    text = page.locator("body").inner_text()
    screenshot(page, "ask-run-button-answer")
    assert QUESTION in text, text[-1500:]


def submit_run_form(page, api_url: str, deployment_id: str, attempts: int = 2) -> None:
    """Click Submit until the deployment has a run. On a cold UI a click can land before the form
    takes it (seen once on a fresh clone: no run, no error); the form staying open with no run
    created is that race, not ragline's, and the screenshots show each try."""
    submit = page.get_by_role("button", name="Submit", exact=True)
    for attempt in range(1, attempts + 1):
        submit.click()
        for _ in range(60):  # up to 30 s for the UI to create the run
            if deployment_runs(api_url, deployment_id):
                return
            page.wait_for_timeout(500)
        screenshot(page, f"ask-run-submit-try-{attempt}")
    raise AssertionError(f"no run after {attempts} clicks on Submit; see test-artifacts/")


def deployment_runs(api_url: str, deployment_id: str) -> list[dict]:
    filter_ = {"deployments": {"id": {"any_": [deployment_id]}}}
    return httpx.post(f"{api_url}/flow_runs/filter", json=filter_, timeout=30).json()


def wait_for_deployment_run(api_url: str, deployment_id: str, timeout_s: float = 600) -> dict:
    """The deployment's (only) flow run, once it is final."""
    import time

    from tests.serving import TERMINAL

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = deployment_runs(api_url, deployment_id)
        assert len(runs) <= 1, f"the form created {len(runs)} runs"
        if runs and runs[0]["state_type"] in TERMINAL:
            return runs[0]
        time.sleep(0.5)
    raise TimeoutError(f"no finished run of deployment {deployment_id} within {timeout_s} s")
