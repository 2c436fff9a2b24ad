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
# Short answers: no test checks more of an answer than its first words, and the bundled SmolLM2
# takes 13-45 s for the default 256 tokens on 2 cores. A test about generation sets its own.
os.environ.setdefault("RAGLINE_GENERATION__MAX_TOKENS", "48")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def needs_shared_data(path: Path = SHARED_DOCS):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} (the shared test data) is not present")


# ---------------------------------------------------------------------------------------------
# On CI a skip is a failure.
#
# A skip there means a broken install (a package `scripts/setup.sh test` should have installed, a
# tool scripts/setup-test-tools.sh should have put on the PATH, the shared data not beside the
# clone), and a suite that skips what it cannot run passes while testing less. Outside CI skips
# stay skips, so a developer without Chromium can still run the rest. The allow-list holds the
# skips CI accepts, keyed by test id (without parameters), each with the reason.
# ---------------------------------------------------------------------------------------------

ON_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
ALLOWED_CI_SKIPS = {
    "tests/test_benchmarks.py::test_peer_scripts_smoke": (
        "the peers' venv (LlamaIndex, Haystack and their own torch, ~2 GB) is set up only to record "
        "the comparison in BENCHMARKS.md (bash benchmarks/peers/setup.sh); ragline never imports them"
    ),
}


def skip_is_failure(nodeid: str, on_ci: bool = ON_CI) -> bool:
    """True when a skip of this test must fail the run: on CI, unless the test is allow-listed."""
    return on_ci and nodeid.split("[", 1)[0] not in ALLOWED_CI_SKIPS


def _skip_reason(longrepr) -> str:
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and skip_is_failure(report.nodeid):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped on CI: {_skip_reason(report.longrepr)}\n"
            "On CI (CI=true) a skip is a failure: fix the install (scripts/setup.sh test, "
            "scripts/setup-test-tools.sh, ../shared/data), or add the test to ALLOWED_CI_SKIPS in "
            "tests/conftest.py with the reason."
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and skip_is_failure(report.nodeid):  # a module-level skip or importorskip
        report.outcome = "failed"
        report.longrepr = f"a whole module skipped on CI: {_skip_reason(report.longrepr)}"


def pytest_sessionstart(session):
    """On CI, missing shared data ends the run at once: ~90 tests need it."""
    missing = [str(path) for path in (SHARED_DOCS, SQUAD_DIR) if not path.is_dir()]
    if ON_CI and missing:
        pytest.exit(
            f"the shared test data is missing on CI: {', '.join(missing)}. Put a copy of shared/ beside the "
            "clone (../shared/data/docs and ../shared/data/squad2-cs224n-test-retrieval).",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def pytest_report_header(config):
    if ON_CI:
        return f"CI=true: a skip is a failure, except {len(ALLOWED_CI_SKIPS)} allow-listed (tests/conftest.py)"


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
    graceful = _signal_and_wait(process, sig, timeout_s, seen)
    killed = _kill_what_is_left(process, seen, graceful, kill_wait_s)
    for stream in (process.stdin, process.stdout, process.stderr):
        try:
            if stream is not None:
                stream.close()
        except Exception:
            pass
    return Stopped(process.returncode, graceful, killed)


def _signal_and_wait(process: subprocess.Popen, sig: int, timeout_s: float, seen: dict) -> bool:
    """Send `sig`, wait for the exit, and note the descendants met meanwhile; True if it exited."""

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
        return process.poll() is not None
    except Exception:
        return False


def _kill_what_is_left(process: subprocess.Popen, seen: dict, graceful: bool, kill_wait_s: float) -> list[int]:
    """SIGKILL the process group (a pgid is never reused while a member lives), then each
    descendant seen (those in sessions of their own are not in the group); reap them."""
    killed: list[int] = []
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
    return killed


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


# Root reads anything, so a test about permissions runs its command as root without the two
# capabilities that bypass file permissions (util-linux's setpriv; tests/test_hostile.py too).
_NO_DAC = "-dac_override,-dac_read_search"
WITHOUT_ROOT_POWERS = ("setpriv", f"--inh-caps={_NO_DAC}", f"--bounding-set={_NO_DAC}", "--")


def permission_prefix() -> tuple[str, ...]:
    """What to run a command with so that chmod 000 stops it: nothing for a normal user; setpriv
    for root (the test skips, and so fails on CI, where setpriv is missing)."""
    if os.geteuid() != 0:
        return ()
    import shutil

    if not shutil.which("setpriv"):
        pytest.skip("running as root and setpriv (util-linux) is missing: chmod 000 cannot stop root")
    return WITHOUT_ROOT_POWERS


def run_cli(
    *args: str,
    env: dict | None = None,
    timeout: int = 900,
    unset: tuple[str, ...] = (),
    prefix: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """Run the real `ragline` console command in a subprocess (its own session: on a timeout or an
    interrupt it is killed with everything it started, then the error propagates). `unset` names
    variables of this process's environment the command must not see (e.g. PREFECT_API_URL);
    `prefix` is a command that runs it (e.g. WITHOUT_ROOT_POWERS)."""
    full_env = {**os.environ, **(env or {})}
    for name in unset:
        full_env.pop(name, None)
    process = subprocess.Popen(
        [*prefix, sys.executable, "-m", "ragline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:  # TimeoutExpired, KeyboardInterrupt, pytest-timeout
        stop_process(process, signal.SIGKILL, timeout_s=5)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# ---------------------------------------------------------------------------------------------
# The SQuAD set, embedded once per embedder per session: the retrieval-sanity and backend-quality
# tests read the same 570 passages and questions with the same backends.
# ---------------------------------------------------------------------------------------------


class SquadVectors:
    """Passages (title + text) and questions of the SQuAD BEIR set, and their embeddings by
    embedder name. Questions are embedded as documents, the way both tests always did (MiniLM has
    no query prompt)."""

    def __init__(self):
        import json

        with open(SQUAD_DIR / "corpus.jsonl") as handle:
            self.corpus = [json.loads(line) for line in handle]
        with open(SQUAD_DIR / "queries.jsonl") as handle:
            self.queries = {row["_id"]: row["text"] for row in map(json.loads, handle)}
        self._passages: dict[str, dict[str, object]] = {}
        self._questions: dict[str, dict[str, object]] = {}

    def passages(self, embedder, passage_ids: list[str] | None = None):
        """The embeddings of `passage_ids` (default: every passage, in corpus order); a passage
        is embedded once per embedder, whichever test asks first."""
        import numpy as np

        texts = {row["_id"]: f"{row['title']}\n{row['text']}" for row in self.corpus}
        passage_ids = list(texts) if passage_ids is None else passage_ids
        known = self._passages.setdefault(embedder.name, {})
        missing = [p for p in passage_ids if p not in known]
        if missing:
            known.update(zip(missing, embedder.embed_documents([texts[p] for p in missing]), strict=True))
        return np.stack([known[p] for p in passage_ids])

    def questions(self, embedder, query_ids: list[str]):
        import numpy as np

        known = self._questions.setdefault(embedder.name, {})
        missing = [q for q in dict.fromkeys(query_ids) if q not in known]
        if missing:
            known.update(zip(missing, embedder.embed_documents([self.queries[q] for q in missing]), strict=True))
        return np.stack([known[q] for q in query_ids])


@pytest.fixture(scope="session")
def squad_vectors() -> SquadVectors:
    return SquadVectors()
