"""Helpers for the deployment/serving tests: a real `ragline serve` process and REST calls."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT, Stopped, start_process, stop_process

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
QUESTION = "How does ragline decide which files to skip when it ingests a folder again?"


def small_docs(tmp: Path) -> Path:
    """A copy of the repo's docs/ folder: a small corpus ingests in seconds."""
    target = tmp / "docs"
    shutil.copytree(REPO_ROOT / "docs", target)
    return target


def serve_env(api_url: str, data_dir: Path, ingest_path: Path) -> dict:
    return {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "RAGLINE_DATA_DIR": str(data_dir),
        "RAGLINE_DEPLOYMENTS__INGEST_PATH": str(ingest_path),
        # Short answers keep the tests about serving, not about generation speed.
        "RAGLINE_GENERATION__MAX_TOKENS": "48",
        "HF_HUB_OFFLINE": "1",
    }


class ServeProcess:
    """`ragline serve` in a subprocess of its own session; stop() sends SIGINT like Ctrl-C, and
    kills it (and whatever it started) if it has not exited within the wait."""

    def __init__(self, env: dict, log_path: Path):
        self.env = env
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = start_process(
            [sys.executable, "-m", "ragline.cli", "serve"],
            env=env,
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "query worker ready" in self.output():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"ragline serve exited {self.process.returncode}:\n{self.output()}")
            time.sleep(0.5)
        raise TimeoutError(f"ragline serve was not ready in {timeout_s} s:\n{self.output()}")

    def stop(self) -> Stopped:
        """Never raises (it runs in teardowns); the caller may assert on what it returns."""
        stopped = stop_process(self.process, signal.SIGINT, timeout_s=60)
        self.log.close()
        return stopped


def deployment(api_url: str, name: str) -> dict:
    response = httpx.get(f"{api_url}/deployments/name/{name}", timeout=30)
    response.raise_for_status()
    return response.json()


def create_flow_run(api_url: str, deployment_id: str, parameters: dict) -> httpx.Response:
    """POST create_flow_run; a 503 (SQLite busy under concurrent writes) is retried, as Prefect's
    own client does."""
    for attempt in range(8):
        response = httpx.post(
            f"{api_url}/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters}, timeout=30
        )
        if response.status_code != 503:
            return response
        time.sleep(0.5 * (attempt + 1))
    return response


def wait_for_run(api_url: str, flow_run_id: str, timeout_s: float = 900) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = httpx.get(f"{api_url}/flow_runs/{flow_run_id}", timeout=30).json()
        if run["state_type"] in TERMINAL:
            return run
        time.sleep(0.5)
    raise TimeoutError(f"flow run {flow_run_id} did not finish in {timeout_s} s")


def run_artifacts(api_url: str, flow_run_id: str) -> list[dict]:
    response = httpx.post(
        f"{api_url}/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def persisted_result(flow_run_id: str):
    """The run's return value, read back from result storage by this (another) process."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state.result()


def check_answer(answer: dict, corpus: Path) -> None:
    assert answer["answer"].strip(), answer
    assert answer["citations"], "the answer cites nothing"
    names = {p.name for p in corpus.iterdir()}
    for citation in answer["citations"]:
        assert Path(citation["source"]).name in names, citation["source"]
        assert citation["text"].strip()
