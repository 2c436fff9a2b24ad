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
