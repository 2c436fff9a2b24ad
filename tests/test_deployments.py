"""Deployments on a real Prefect server: prefect.yaml, `ragline deploy`, a process worker, scale-out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
import yaml

from ragline.settings.config import DeploymentSettings
from tests.conftest import REPO_ROOT, run_cli, start_process, stop_process
from tests.serving import (
    QUESTION,
    check_answer,
    create_flow_run,
    deployment,
    persisted_result,
    run_artifacts,
    serve_env,
    small_docs,
    wait_for_run,
)

PREFECT_YAML = REPO_ROOT / "deployments" / "prefect.yaml"
COMPOSE = REPO_ROOT / "docker-compose.yml"


def load_flow(entrypoint: str):
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(str(REPO_ROOT / entrypoint))


def pool_runs(api_url: str, pool: str) -> list[dict]:
    """Flow runs on the pool's queues that are not finished (scheduled, pending, running...)."""
    response = httpx.post(
        f"{api_url}/flow_runs/filter",
        timeout=30,
        json={
            "work_pools": {"name": {"any_": [pool]}},
            "flow_runs": {"state": {"type": {"not_any_": ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]}}},
        },
    )
    response.raise_for_status()
    return response.json()


def test_prefect_yaml_matches_the_flows_and_settings():
    config = yaml.safe_load(PREFECT_YAML.read_text())
    assert config["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $RAGLINE_PROJECT_DIR }}"}}
    ]
    assert not any("git" in step_name for step in config["pull"] for step_name in step)
    by_entrypoint = {d["entrypoint"]: d for d in config["deployments"]}
    assert set(by_entrypoint) == {"flows/ingest.py:ingest", "flows/query.py:ask"}
    assert {load_flow(e).name for e in by_entrypoint} == {"ingest", "ask"}

    ingest, ask = by_entrypoint["flows/ingest.py:ingest"], by_entrypoint["flows/query.py:ask"]
    defaults = DeploymentSettings()
    assert [s["cron"] for s in ingest["schedules"]] == [defaults.ingest_cron]
    assert ingest["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert ask["enforce_parameter_schema"] is True
    assert {ingest["work_pool"]["name"], ask["work_pool"]["name"]} == {defaults.work_pool}


def test_prefect_deploy_accepts_the_yaml(prefect_api, tmp_path):
    """`prefect deploy` itself parses and registers deployments/prefect.yaml."""
    deployed = run_cli("deploy", env={"PREFECT_API_URL": prefect_api, "RAGLINE_DATA_DIR": str(tmp_path)})
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr  # it creates the pool used below
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "RAGLINE_PROJECT_DIR": str(REPO_ROOT),
        "RAGLINE_INGEST_PATH": str(tmp_path / "docs"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_YAML)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ingest = deployment(prefect_api, "ingest/ragline")
    assert ingest["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}]
    assert ingest["parameters"]["path"] == str(tmp_path / "docs")
    assert [s["schedule"]["cron"] for s in ingest["schedules"]] == ["0 * * * *"]


def test_ragline_deploy_registers_schedule_limit_and_pool(prefect_api, tmp_path):
    cron = "*/20 6-18 * * 1-5"
    env = {
        "PREFECT_API_URL": prefect_api,
        "RAGLINE_DATA_DIR": str(tmp_path),
        "RAGLINE_DEPLOYMENTS__INGEST_CRON": cron,
        "RAGLINE_DEPLOYMENTS__INGEST_PATH": str(tmp_path / "docs"),
    }
    result = run_cli("deploy", env=env)
    assert result.returncode == 0, result.stderr
    assert "prefect worker start --pool ragline-process" in result.stdout

    ingest = deployment(prefect_api, "ingest/ragline")
    assert [s["schedule"]["cron"] for s in ingest["schedules"]] == [cron]
    assert all(s["active"] for s in ingest["schedules"])
    assert ingest["paused"] is False
    assert ingest["global_concurrency_limit"]["limit"] == 1
    assert ingest["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert ingest["work_pool_name"] == "ragline-process"
    assert ingest["parameters"] == {"path": str(tmp_path / "docs"), "collection": "ragline"}
    assert ingest["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}]
    ask = deployment(prefect_api, "ask/ragline")
    assert ask["enforce_parameter_schema"] is True
    assert ask["entrypoint"] == "flows/query.py:ask"
    assert ask["work_pool_name"] == "ragline-process"


def test_serve_keeps_the_ingest_schedule_paused_when_asked(prefect_api, tmp_path):
    """`ragline serve` resumes the schedules its last stop paused, but not one registered paused."""
    import asyncio

    from ragline.deployments.serve import pause_schedules, register
    from ragline.settings import RaglineSettings

    deployments = {"name": "serve-paused", "ingest_path": str(tmp_path), "ingest_paused": True}
    paused = RaglineSettings(data_dir=tmp_path, deployments=deployments, store={"collection": "servepaused"})
    ids = asyncio.run(register(paused))
    asyncio.run(pause_schedules(ids))  # what stopping `ragline serve` does
    asyncio.run(register(paused))
    assert deployment(prefect_api, "ingest/servepaused")["paused"] is True
    assert deployment(prefect_api, "ask/serve-paused")["paused"] is False
    resumed = paused.model_copy(update={"deployments": paused.deployments.model_copy(update={"ingest_paused": False})})
    asyncio.run(register(resumed))
    assert deployment(prefect_api, "ingest/servepaused")["paused"] is False
    asyncio.run(pause_schedules(ids))  # no runs of it are scheduled for the rest of the session


@pytest.mark.slow
def test_process_worker_answers_ask_triggered_over_rest(prefect_api, tmp_path):
    """The work-pool path: `ragline deploy`, a real `prefect worker`, a REST-triggered run.

    Isolated from the rest of the session's server: its own work pool and deployment names, so
    no deployment or schedule another test registered (`ingest/ragline` on `ragline-process`,
    with runs that fall due while the suite runs) reaches this worker, and its own ingest schedule
    registered paused, so the only run the worker can get is the ask run this test triggers.
    """
    corpus = small_docs(tmp_path)
    env = {
        **serve_env(prefect_api, tmp_path / "data", corpus),
        "RAGLINE_DEPLOYMENTS__WORK_POOL": "ragline-worker-test",
        "RAGLINE_DEPLOYMENTS__NAME": "worker-test",
        "RAGLINE_STORE__COLLECTION": "workertest",
        # Registered paused, so its schedule never makes a run. Pausing after `ragline deploy` raced
        # Prefect's scheduler: runs it had read the deployment for were inserted after the pause
        # deleted the scheduled ones (CI, 2026-12-02), and the worker took them first.
        "RAGLINE_DEPLOYMENTS__INGEST_PAUSED": "true",
    }
    assert run_cli("ingest", str(corpus), env=env).returncode == 0
    deployed = run_cli("deploy", env=env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "prefect worker start --pool ragline-worker-test" in deployed.stdout
    assert "0 * * * * (UTC), PAUSED: resume it in the Prefect UI" in deployed.stdout
    ingest, ask = deployment(prefect_api, "ingest/workertest"), deployment(prefect_api, "ask/worker-test")
    assert ingest["work_pool_name"] == ask["work_pool_name"] == "ragline-worker-test"
    assert ingest["paused"] is True and ask["paused"] is False
    assert pool_runs(prefect_api, "ragline-worker-test") == [], "runs the worker would pick up first"

    with open(tmp_path / "worker.log", "wb") as worker_log:
        worker = start_process(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "ragline-worker-test", "--limit", "1"],
            env=env,
            cwd=tmp_path,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        try:
            response = create_flow_run(prefect_api, ask["id"], {"question": QUESTION})
            assert response.status_code == 201, response.text
            run = wait_for_run(prefect_api, response.json()["id"])
        finally:
            # Prefect's worker turns SIGTERM into SIGINT: it stops polling, stops its in-flight
            # runs (SIGTERM to their group, SIGKILL after 30 s) and exits. stop_process kills
            # whatever is left after 60 s and never raises, so it cannot hide a failure above.
            stopped = stop_process(worker, signal.SIGTERM, timeout_s=60)
    log = (tmp_path / "worker.log").read_text(errors="replace")[-4000:]
    assert run["state_type"] == "COMPLETED", (run["state"], log)
    check_answer(persisted_result(run["id"]), corpus)
    assert any("### Citations" in a["data"] for a in run_artifacts(prefect_api, run["id"]))
    assert stopped.graceful, f"the worker did not exit within 60 s of SIGTERM: {stopped}\n{log}"


@pytest.mark.slow
def test_ingest_on_a_local_dask_cluster(prefect_api, ragline_env, tmp_path):
    import prefect_dask  # noqa: F401  (scripts/setup.sh test installs the dask extra: no skip)

    from ragline.flows.ingest import ingest
    from ragline.flows.scale import dask_task_runner

    corpus = small_docs(tmp_path)
    runner = dask_task_runner("local")
    assert type(runner).__name__ == "DaskTaskRunner"
    summary = ingest.with_options(task_runner=runner)(path=str(corpus), collection="dask")
    assert summary["chunks"] > 0
    assert summary["counts"] == {"ingested": len(list(corpus.iterdir()))}


def test_stop_process_kills_what_ignores_the_signal(tmp_path):
    """The teardown helper the worker test relies on: a process that ignores SIGTERM, with a child
    in a session of its own (as Prefect starts flow runs), is killed with that child; no raise."""
    import psutil

    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    process = start_process([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = psutil.Process(int(process.stdout.readline()))
    stopped = stop_process(process, signal.SIGTERM, timeout_s=1)
    assert not stopped.graceful and stopped.returncode == -signal.SIGKILL
    assert process.pid in stopped.killed and child.pid in stopped.killed
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert stop_process(process).graceful  # stopping again is harmless


def test_qdrant_server_store_passes_sharding_to_create_collection(tmp_path):
    """qdrant-client local mode, spied: the server store forwards shard/replication settings."""
    from ragline.store import CollectionInfo
    from ragline.store.qdrant_server import QdrantServerStore

    store = QdrantServerStore(str(tmp_path / "qdrant"), shard_number=3, replication_factor=2)
    received = {}
    create = store.client.create_collection

    def spy(*args, **kwargs):
        received.update(kwargs)
        return create(*args, **kwargs)

    store.client.create_collection = spy
    store.ensure_collection(CollectionInfo(name="sharded", embedder="test:model", dimensions=4))
    assert received["shard_number"] == 3 and received["replication_factor"] == 2
    assert store.collection_info("sharded").dimensions == 4
    store.close()


def test_query_worker_hands_every_ask_parameter_on(monkeypatch):
    """The worker's task takes the ask flow's parameters and passes each on (strict included)."""
    import inspect

    from ragline.deployments import worker
    from ragline.flows.query import ask

    assert inspect.signature(worker.answer_question.fn).parameters.keys() == inspect.signature(ask.fn).parameters.keys()
    received = {}
    monkeypatch.setattr(worker, "ask", lambda **params: received.update(params) or {})
    params = dict(question="q?", k=3, sources=["a.md"], file_types=["md"], collection="c", strict=True)
    worker.answer_question.fn(**params)
    assert received == params


def test_compose_stack_is_complete():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"postgres", "prefect-server", "qdrant", "ragline-worker"} <= set(services)
    for name in ("postgres", "prefect-server", "qdrant"):
        assert services[name]["healthcheck"]["test"], name
    qdrant = services["qdrant"]
    assert qdrant["image"].startswith("qdrant/qdrant:v1.") and "latest" not in qdrant["image"]
    assert "QDRANT_API_KEY" in qdrant["environment"]["QDRANT__SERVICE__API_KEY"]
    assert any(v.endswith(":/qdrant/storage") for v in qdrant["volumes"])
    worker = services["ragline-worker"]
    assert worker["build"] == "." and (REPO_ROOT / "Dockerfile").exists()
    assert worker["environment"]["RAGLINE_ENV"] == "docker"
    assert worker["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert "postgresql+asyncpg://" in services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]


def test_docker_compose_config_validates():
    """The Compose CLI's own validation, where one is installed (no Docker engine needed)."""
    import shutil

    if shutil.which("docker-compose"):
        command = ["docker-compose", "config", "-q"]
    elif subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        command = ["docker", "compose", "config", "-q"]
    else:
        pytest.skip("no Compose CLI here (apt-get install docker-compose); the YAML test above still runs")
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "QDRANT_API_KEY": "k", "POSTGRES_PASSWORD": "p", "PREFECT_AUTH_STRING": "admin:pw"},
    )
    assert result.returncode == 0, result.stderr


def test_local_server_port_is_used_only_when_it_is_ragline_s(prefect_api, tmp_path, monkeypatch):
    """A look-alike on the local port (healthy, but not the server ragline started) is refused;
    the server started by start_local_server passes the pidfile handshake."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import urlparse

    from ragline.deployments.local_server import ensure_prefect_api, is_ours, server_home_of
    from ragline.settings import get_settings

    port = urlparse(prefect_api).port
    home = server_home_of(prefect_api)
    assert home is not None and is_ours(prefect_api, home, port)
    assert not is_ours(prefect_api, tmp_path / "prefect", port)  # another data dir's home

    class AnswersEverything(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"home": "%s"}' % str(tmp_path / "data" / "prefect").encode())

        def log_message(self, *args):
            pass

    impostor = ThreadingHTTPServer(("127.0.0.1", 0), AnswersEverything)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("PREFECT_API_URL", raising=False)
        monkeypatch.setenv("RAGLINE_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("RAGLINE_PREFECT__LOCAL_PORT", str(impostor.server_address[1]))
        with pytest.raises(RuntimeError, match="not the Prefect server ragline started"):
            ensure_prefect_api(get_settings())
    finally:
        impostor.shutdown()  # monkeypatch restores PREFECT_API_URL (never applied: ensure_prefect_api raised)
