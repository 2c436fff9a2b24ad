"""Shared fixtures: a real Prefect server on loopback, an isolated data dir, the shared data."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SHARED_DOCS = SHARED_DATA / "docs"
SQUAD_DIR = SHARED_DATA / "squad2-cs224n-test-retrieval"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def needs_shared_data(path: Path = SHARED_DOCS):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} (the shared test data) is not present")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """A real `prefect server` on loopback for the whole session; PREFECT_API_URL points at it."""
    from ragline.deployments.local_server import _apply, local_api_url, start_local_server

    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    process = start_local_server(home, port, timeout_s=180)
    api_url = _apply(local_api_url(port))
    yield api_url
    os.killpg(process.pid, 15)
    process.wait(timeout=30)


@pytest.fixture
def ragline_env(tmp_path, monkeypatch):
    """An isolated data dir (store, local state) for one test; returns it."""
    data_dir = tmp_path / "ragline-data"
    monkeypatch.setenv("RAGLINE_DATA_DIR", str(data_dir))
    return data_dir


def run_cli(*args: str, env: dict | None = None, timeout: int = 900):
    """Run the real `ragline` console command in a subprocess."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )
