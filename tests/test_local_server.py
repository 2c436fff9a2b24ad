"""The `make demo` path: no PREFECT_API_URL, so ragline starts its own local Prefect server.

Every other test runs against the session's server (PREFECT_API_URL is set); these run the real
`ragline` commands without it, on a port and data dir of their own, as a user's first commands
do: the first command starts the server in the background, later ones reuse it, `ragline server
stop` stops it, and whatever else holds the port (a stale pidfile, a foreign program) is neither
trusted nor harmed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, run_cli, start_process, stop_process

pytestmark = pytest.mark.slow


class LocalSetup:
    """A data dir and a port of its own; `cli` runs ragline there with no Prefect API configured."""

    def __init__(self, tmp: Path):
        self.data_dir = tmp / "data"
        self.port = free_port()
        self.env = {
            "RAGLINE_DATA_DIR": str(self.data_dir),
            "RAGLINE_PREFECT__LOCAL_PORT": str(self.port),
            # Prefect's client-side profile and state, away from ~/.prefect.
            "PREFECT_HOME": str(tmp / "client-prefect-home"),
        }
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.pid_file = self.data_dir / "prefect" / "server.pid"
        self.server_pids: set[int] = set()

    def cli(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        result = run_cli(*args, env=self.env, unset=("PREFECT_API_URL", "PREFECT_UI_API_URL"), timeout=timeout)
        if self.pid_file.exists():
            self.server_pids.add(self.server_pid())
        return result

    def server_pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill_leftover_servers(self) -> None:
        """Teardown: SIGKILL the process group of every Prefect server these commands started."""
        import psutil

        for pid in self.server_pids:
            try:
                if "prefect" in " ".join(psutil.Process(pid).cmdline()):
                    os.killpg(pid, signal.SIGKILL)
            except (psutil.Error, ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def local(tmp_path):
    setup = LocalSetup(tmp_path)
    try:
        yield setup
    finally:
        setup.kill_leftover_servers()


def wait_until(condition, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped): what a pidfile holds after a reboot."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_first_command_starts_the_server_later_ones_reuse_it_and_stop_stops_it(local, tmp_path):
    # A pidfile left from a server that is gone (a reboot, a kill -9), started on another port,
    # must not stop the start.
    local.pid_file.parent.mkdir(parents=True)
    local.pid_file.write_text(str(dead_pid()))
    (local.pid_file.parent / "server.port").write_text(str(free_port()))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.txt").write_text("The lighthouse keeper trims the wick at dusk and logs the weather.\n")

    ingested = local.cli("ingest", str(docs), "--json")
    assert ingested.returncode == 0, ingested.stderr[-3000:]
    assert local.answers(), "no Prefect server answers on the local port after the first command"
    server = local.server_pid()
    assert alive(server)
    from importlib.metadata import version

    assert (local.pid_file.parent / "server.prefect-version").read_text() == version("prefect")
    # The run was recorded by that server: the UI a user opens shows it.
    runs = httpx.post(f"{local.api_url}/flow_runs/filter", json={"flows": {"name": {"any_": ["ingest"]}}}, timeout=30)
    runs.raise_for_status()
    assert [run["state_type"] for run in runs.json()] == ["COMPLETED"]

    started = local.cli("server", "start")
    assert started.returncode == 0, started.stderr
    assert f"http://127.0.0.1:{local.port}/api" in started.stdout
    assert local.server_pid() == server and alive(server)  # reused, not a second server

    # `server stop` stops it on the port it was started on, whatever the settings name now.
    local.env["RAGLINE_PREFECT__LOCAL_PORT"] = str(free_port())
    stopped = local.cli("server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert wait_until(lambda: not alive(server) and not local.answers()), "the server still runs after stop"
    assert not local.pid_file.exists()

    again = local.cli("server", "stop")
    assert again.returncode == 0, again.stderr
    assert "no local Prefect server" in again.stdout


def test_a_new_port_stops_the_server_left_on_the_old_one(tmp_path):
    """A new RAGLINE_PREFECT__LOCAL_PORT moves the data dir's server: the one its pidfile and
    server.port name is stopped before another starts (one server per database, and no orphan
    that `server stop` could no longer find); nothing else is touched."""
    from ragline.deployments.local_server import stop_server_on_another_port

    home, old_port = tmp_path / "prefect", free_port()
    home.mkdir()
    old_server = start_process([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(old_port)])
    bystander = start_process([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert wait_until(lambda: listening(old_port), 30)
        (home / "server.pid").write_text(str(bystander.pid))  # recorded, but not listening there
        (home / "server.port").write_text(str(old_port))
        stop_server_on_another_port(home, free_port())
        assert bystander.poll() is None
        (home / "server.pid").write_text(str(old_server.pid))
        stop_server_on_another_port(home, old_port)  # the port it runs on: kept
        assert old_server.poll() is None
        stop_server_on_another_port(home, free_port())
        assert wait_until(lambda: old_server.poll() is not None, 15), "the server on the old port still runs"
        assert bystander.poll() is None
    finally:
        stop_process(old_server, signal.SIGKILL, timeout_s=5)
        stop_process(bystander, signal.SIGKILL, timeout_s=5)


def listening(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_stop_with_a_stale_pidfile_harms_no_other_process(local):
    """The pid in a stale pidfile may belong to another program by now: `server stop` must check
    that it is the Prefect server before it signals anything."""
    bystander = start_process([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        local.pid_file.parent.mkdir(parents=True)
        local.pid_file.write_text(str(bystander.pid))
        result = local.cli("server", "stop")
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        time.sleep(1)  # a signal sent would have arrived by now
        assert bystander.poll() is None, "ragline server stop killed a process that is not its server"
        assert not local.pid_file.exists()  # the stale pidfile is cleaned up
    finally:
        stop_process(bystander, signal.SIGKILL, timeout_s=5)


@pytest.mark.parametrize("health", ["missing", "looks-healthy"])
def test_a_foreign_program_on_the_port_is_refused_with_what_to_do(local, tmp_path, health):
    """A plain `python -m http.server` holds the port. With a file at api/health it even answers the
    health check with 200: ragline must still not send it runs, and must say what to do."""
    site = tmp_path / "site"
    (site / "api").mkdir(parents=True)
    if health == "looks-healthy":
        (site / "api" / "health").write_text("true")
    foreign = start_process(
        [sys.executable, "-m", "http.server", str(local.port), "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: port_open(local.port), 30), "http.server did not start"
        result = local.cli("server", "start")
        assert foreign.poll() is None, "ragline stopped the program that held the port"
    finally:
        stop_process(foreign, signal.SIGKILL, timeout_s=5)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    error = " ".join(result.stderr.split())
    assert error.startswith("error:") and str(local.port) in error
    assert "RAGLINE_PREFECT__LOCAL_PORT" in error  # the fix: another port
    assert "Prefect API:" not in result.stdout


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_version_handshake_is_skipped_only_for_a_server_of_the_installed_prefect(tmp_path, monkeypatch):
    """ragline started the server and wrote its Prefect version: the client's handshake is skipped
    while that is the installed version, and is back after an upgrade (until `ragline server stop`)."""
    from ragline.deployments import local_server
    from ragline.settings import RaglineSettings

    settings = RaglineSettings(data_dir=str(tmp_path / "data"))
    home = local_server.server_home(settings)
    home.mkdir(parents=True)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(local_server, "_healthy", lambda url: True)  # a server answers on the port
    monkeypatch.setattr(local_server, "is_ours", lambda url, home, port: True)  # and it is ours
    monkeypatch.setattr(local_server, "_apply", lambda url: url)
    for recorded, skipped in (("0.0.1", False), (local_server.installed_prefect_version(), True)):
        monkeypatch.delenv("PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED", raising=False)
        (home / local_server.VERSION_FILE).write_text(recorded)
        local_server.ensure_prefect_api(settings)
        assert (os.environ.get("PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED") == "false") is skipped, recorded
