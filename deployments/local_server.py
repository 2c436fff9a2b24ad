"""Which Prefect API the flows talk to, decided before Prefect loads its settings.

Prefect's ephemeral mode starts a throwaway server in every process (~7 s), times out on its
first run on a fresh PREFECT_HOME, and forgets task-run history at exit. So ragline uses
PREFECT_API_URL when it is set (or `prefect.api_url` in settings), and otherwise starts one local
`prefect server` in the background (analytics off, state under <data_dir>/prefect) and reuses it
from every later command. `ragline server stop` stops it.

Before the server on the local port is used it must be ragline's (is_ours): anything else
answering on 127.0.0.1:4242 (another user's server, an unrelated program) would otherwise receive
every run's parameters, logs and results. The handshake is the pidfile ragline wrote when it
started the server: that process (or its uvicorn child) must be alive and be the one listening on
the port, and the server must report <data_dir>/prefect as its PREFECT_HOME (/api/admin/settings).
Another program cannot take that pid, so a look-alike server is refused with a message.
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


def server_home_of(api_url: str) -> Path | None:
    """The PREFECT_HOME the Prefect server at `api_url` reports, or None if it reports none."""
    try:
        response = httpx.get(f"{api_url}/admin/settings", timeout=5.0)
        home = response.json().get("home") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return Path(home).resolve() if isinstance(home, str) and home else None


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` or one of its children listens on the loopback `port`."""
    import psutil

    try:
        process = psutil.Process(pid)
        for proc in [process, *process.children(recursive=True)]:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return True
    except (psutil.Error, OSError):
        return False
    return False


def is_ours(api_url: str, home: Path, port: int) -> bool:
    """The server on `port` is the one ragline started for `home` (see the module docstring)."""
    try:
        pid = int((home / "server.pid").read_text().strip())
    except (OSError, ValueError):
        return False
    return listens_on(pid, port) and server_home_of(api_url) == home.resolve()


def ensure_prefect_api(settings: RaglineSettings) -> str:
    """Point this process at a Prefect API, starting the local server if none is configured."""
    if os.environ.get("PREFECT_API_URL"):
        return _apply(os.environ["PREFECT_API_URL"])
    if settings.prefect.api_url:
        return _apply(settings.prefect.api_url)
    port, home = settings.prefect.local_port, server_home(settings)
    api_url = local_api_url(port)
    if not _healthy(api_url):
        stop_server_on_another_port(home, port)
        start_local_server(home, port, settings.prefect.startup_timeout_s)
    if not is_ours(api_url, home, port):
        raise RuntimeError(
            f"something else answers on {LOCAL_HOST}:{port}: not the Prefect server ragline started for "
            f"{home} (see {home / 'server.pid'}), so ragline will not send it runs. Stop that program, set "
            "RAGLINE_PREFECT__LOCAL_PORT to a free port, or, if it is a Prefect server you trust (e.g. "
            f"one started for another data dir), set PREFECT_API_URL={api_url}."
        )
    # The client's version handshake (two GET /admin/version per run, the slowest request) is
    # skipped while the server ragline started runs the installed Prefect version; after an
    # upgrade it is back on until `ragline server stop` and the next command start the new one.
    if _started_version(home) == installed_prefect_version():
        os.environ.setdefault("PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED", "false")
    return _apply(api_url)


VERSION_FILE = "server.prefect-version"
PORT_FILE = "server.port"


def recorded_server(home: Path) -> tuple[int, int | None] | None:
    """(pid, port) of the server ragline last started for `home` (port None from older versions)."""
    try:
        pid = int((home / "server.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        return pid, int((home / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return pid, None


def stop_server_on_another_port(home: Path, port: int) -> None:
    """Stop this data dir's server if it still runs on the port the settings named before.

    Two servers on one database would both schedule runs, and the new pidfile would orphan the
    old server (`ragline server stop` could no longer find it)."""
    recorded = recorded_server(home)
    if recorded is None or recorded[1] in (None, port) or not listens_on(*recorded):
        return
    pid, old_port = recorded
    print(f"ragline: stopping the local Prefect server on port {old_port} (now {port})", file=sys.stderr)
    _stop_pid_group(pid)


def installed_prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")  # without importing Prefect (~2 s)


def _started_version(home: Path) -> str | None:
    try:
        return (home / VERSION_FILE).read_text().strip()
    except OSError:
        return None


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
    with open(home / "server.log", "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", LOCAL_HOST, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (home / "server.pid").write_text(str(process.pid))
    (home / PORT_FILE).write_text(str(port))
    (home / VERSION_FILE).write_text(installed_prefect_version())
    deadline = time.monotonic() + timeout_s
    api_url = local_api_url(port)
    while time.monotonic() < deadline:
        if _healthy(api_url):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.5)
    # A server that never answered is not left behind to hold the port or the database.
    _stop_pid_group(process.pid)
    process.poll()  # the Popen object learns it is gone
    (home / "server.pid").unlink(missing_ok=True)
    raise RuntimeError(
        f"the local Prefect server did not start on port {port} within {timeout_s:.0f} s; "
        f"see {home / 'server.log'}. Set RAGLINE_PREFECT__LOCAL_PORT to a free port, or point "
        "PREFECT_API_URL at a running Prefect server."
    )


def stop_local_server(settings: RaglineSettings) -> bool:
    """Stop the server the pidfile names, if it is still ours; a stale pidfile is only removed.

    A pid is reused by the OS once its process has exited, so the pid in an old pidfile may now be
    another program: it is signalled only while it (or its child) listens on the port the server
    was started on."""
    home = server_home(settings)
    pid_file = home / "server.pid"
    if not pid_file.exists():
        return False
    recorded = recorded_server(home)
    if recorded is not None:
        pid, port = recorded
        # The port it was started on, which the settings may no longer name.
        if listens_on(pid, port or settings.prefect.local_port):
            _stop_pid_group(pid)
    pid_file.unlink(missing_ok=True)
    return True


def _stop_pid_group(pid: int, timeout_s: float = 10) -> None:
    """SIGTERM the process group `pid` leads, then SIGKILL it if its leader has not exited within
    `timeout_s` (one server per database: the next one must not start beside it)."""
    import psutil

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)  # the group too: children outlive a leader that already exited
            psutil.Process(pid).wait(timeout=timeout_s)  # reaps it when it is this process's child
            return
        except psutil.TimeoutExpired:
            continue
        except (ProcessLookupError, PermissionError, psutil.Error):
            return
