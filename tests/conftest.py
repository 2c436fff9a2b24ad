"""Shared fixtures: a real Prefect server on loopback, an isolated data dir, the shared data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

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


# ---------------------------------------------------------------------------------------------
# Test subprocesses that always stop.
#
# Every long-lived process a test starts (`prefect server`, `prefect worker`, `ragline serve`) runs
# in its own session (so its process group is its own, and a Ctrl-C on pytest does not reach it
# half-way) and is stopped by stop_process(): the polite signal, a bounded wait, then SIGKILL to
# its process group AND to every descendant seen while it ran. The descendants matter: Prefect's
# process worker starts each flow run in a new session of its own (runner/_starter_engine.py,
# isolate_process_group), so killing the worker's group alone would leave them running.
# stop_process() never raises, so a teardown cannot hide the failure of the test body; a test that
# wants a clean exit asserts on what it returns.
# ---------------------------------------------------------------------------------------------

_STARTED: list[subprocess.Popen] = []


class Stopped(NamedTuple):
    returncode: int | None  # None: could not be reaped (should not happen after SIGKILL)
    graceful: bool  # the process exited from the polite signal within the wait
    killed: list[int]  # pids that needed SIGKILL (the process, its group, leftover descendants)


def track(process: subprocess.Popen) -> subprocess.Popen:
    """Stop this process at the end of the session at the latest (pytest_sessionfinish)."""
    _STARTED.append(process)
    return process


def start_process(args, **kwargs) -> subprocess.Popen:
    """subprocess.Popen in a new session (own process group), tracked for the session's end."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return track(subprocess.Popen(args, start_new_session=True, **kwargs))


def _descendants(pid: int) -> list:
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # psutil missing, or the process is gone
        return []


def _alive(proc) -> bool:
    try:
        return proc.is_running() and proc.status() != "zombie"
    except Exception:
        return False


def stop_process(
    process: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 30, kill_wait_s: float = 15
) -> Stopped:
    """Stop `process` (started with start_new_session=True) and everything it started; never raises.

    Sends `sig` to the process (SIGINT where the code expects Ctrl-C), waits up to `timeout_s`,
    then SIGKILLs its process group and every descendant still alive, and reaps it.
    """
    seen: dict[int, object] = {}
    killed: list[int] = []
    graceful = False

    def collect():  # only while the pid is unreaped, so it cannot be a reused pid
        if process.poll() is not None:
            return
        for child in _descendants(process.pid):
            seen.setdefault(child.pid, child)

    try:
        collect()
        if process.poll() is None:
            try:
                process.send_signal(sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout_s
            while process.poll() is None and time.monotonic() < deadline:
                collect()
                time.sleep(0.2)
        graceful = process.poll() is not None
    except Exception:
        pass
    # Whatever is left: the process group (a pgid is never reused while a member lives), then
    # each descendant seen (those in sessions of their own are not in the group).
    if process.pid != os.getpgrp():
        try:
            os.killpg(process.pid, signal.SIGKILL)
            if not graceful:
                killed.append(process.pid)
        except Exception:  # ProcessLookupError: the group is gone already
            pass
    for pid, child in seen.items():
        if _alive(child):
            try:
                child.kill()  # psutil checks that the pid still is the same process
                killed.append(pid)
            except Exception:
                pass
    try:
        process.wait(timeout=kill_wait_s)
    except Exception:
        pass
    deadline = time.monotonic() + 5
    for child in seen.values():
        try:  # reaps it when it is ours; otherwise waits (a little) for it to go
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:
            pass
    for stream in (process.stdin, process.stdout, process.stderr):
        try:
            if stream is not None:
                stream.close()
        except Exception:
            pass
    return Stopped(process.returncode, graceful, killed)


def pytest_sessionfinish(session, exitstatus):
    """Nothing a test started outlives the session, whatever its teardown did."""
    for process in _STARTED:
        running = process.poll() is None
        stopped = stop_process(process, signal.SIGKILL, timeout_s=5)
        if running or stopped.killed:
            sys.stderr.write(f"\nkilled a leftover test process {process.pid} {stopped.killed}: {process.args!r}\n")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """A real `prefect server` on loopback for the whole session; PREFECT_API_URL points at it."""
    from ragline.deployments.local_server import _apply, local_api_url, start_local_server

    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    # Started in its own session; a server that never answers is stopped by start_local_server.
    process = track(start_local_server(home, port, timeout_s=180))
    try:
        yield _apply(local_api_url(port))
    finally:
        stop_process(process, signal.SIGTERM, timeout_s=30)


@pytest.fixture
def ragline_env(tmp_path, monkeypatch):
    """An isolated data dir (store, local state) for one test; returns it."""
    data_dir = tmp_path / "ragline-data"
    monkeypatch.setenv("RAGLINE_DATA_DIR", str(data_dir))
    return data_dir


def run_cli(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the real `ragline` console command in a subprocess (its own session: on a timeout or an
    interrupt it is killed with everything it started, then the error propagates)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ragline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:  # TimeoutExpired, KeyboardInterrupt, pytest-timeout
        stop_process(process, signal.SIGKILL, timeout_s=5)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
