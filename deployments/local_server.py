"""Which Prefect API the flows talk to, decided before Prefect loads its settings.

Prefect's ephemeral mode starts a throwaway server in every process (~7 s), times out on its
first run on a fresh PREFECT_HOME, and forgets task-run history at exit. So ragline uses
PREFECT_API_URL when it is set (or `prefect.api_url` in settings), and otherwise starts one local
`prefect server` in the background (analytics off, state under <data_dir>/prefect) and reuses it
from every later command. `ragline server stop` stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ragline.settings import RaglineSettings

LOCAL_HOST = "127.0.0.1"


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _apply(api_url: str) -> str:
    os.environ["PREFECT_API_URL"] = api_url
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    return api_url


def server_home(settings: RaglineSettings) -> Path:
    return (Path(settings.data_dir) / "prefect").resolve()


def local_api_url(port: int) -> str:
    return f"http://{LOCAL_HOST}:{port}/api"


def ensure_prefect_api(settings: RaglineSettings) -> str:
    """Point this process at a Prefect API, starting the local server if none is configured."""
    if os.environ.get("PREFECT_API_URL"):
        return _apply(os.environ["PREFECT_API_URL"])
    if settings.prefect.api_url:
        return _apply(settings.prefect.api_url)
    api_url = local_api_url(settings.prefect.local_port)
    if not _healthy(api_url):
        start_local_server(server_home(settings), settings.prefect.local_port, settings.prefect.startup_timeout_s)
    return _apply(api_url)


def start_local_server(home: Path, port: int, timeout_s: float) -> subprocess.Popen:
    """Start `prefect server` detached from this process, and wait until it answers."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": "",
        # The UI defaults to port 4200; without this it cannot reach a server on another port.
        "PREFECT_UI_API_URL": local_api_url(port),
    }
    log = open(home / "server.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", LOCAL_HOST, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (home / "server.pid").write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    api_url = local_api_url(port)
    while time.monotonic() < deadline:
        if _healthy(api_url):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.5)
    # A server that never answered is not left behind to hold the port or the database.
    _stop_group(process)
    log.close()
    raise RuntimeError(
        f"the local Prefect server did not start on port {port} within {timeout_s:.0f} s; "
        f"see {home / 'server.log'}. Set RAGLINE_PREFECT__LOCAL_PORT to a free port, or point "
        "PREFECT_API_URL at a running Prefect server."
    )


def _stop_group(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it has not exited in `timeout_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_local_server(settings: RaglineSettings) -> bool:
    pid_file = server_home(settings) / "server.pid"
    if not pid_file.exists():
        return False
    try:
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
    except (ProcessLookupError, ValueError):
        pass
    pid_file.unlink(missing_ok=True)
    return True
