"""Deployments on a real Prefect server: prefect.yaml, `ragline deploy`, a process worker, scale-out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ragline.settings.config import DeploymentSettings
from tests.conftest import REPO_ROOT, run_cli
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
    run_cli("deploy", env={"PREFECT_API_URL": prefect_api, "RAGLINE_DATA_DIR": str(tmp_path)})  # creates the pool
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "RAGLINE_PROJECT_DIR": str(REPO_ROOT),
           "RAGLINE_INGEST_PATH": str(tmp_path / "docs")}
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_YAML)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ingest = deployment(prefect_api, "ingest/ragline")
    assert ingest["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}
    ]
    assert ingest["parameters"]["path"] == str(tmp_path / "docs")
    assert [s["schedule"]["cron"] for s in ingest["schedules"]] == ["0 * * * *"]


def test_ragline_deploy_registers_schedule_limit_and_pool(prefect_api, tmp_path):
    cron = "*/20 6-18 * * 1-5"
    env = {"PREFECT_API_URL": prefect_api, "RAGLINE_DATA_DIR": str(tmp_path),
           "RAGLINE_DEPLOYMENTS__INGEST_CRON": cron, "RAGLINE_DEPLOYMENTS__INGEST_PATH": str(tmp_path / "docs")}
    result = run_cli("deploy", env=env)
    assert result.returncode == 0, result.stderr
    assert "prefect worker start --pool ragline-process" in result.stdout

    ingest = deployment(prefect_api, "ingest/ragline")
    assert [s["schedule"]["cron"] for s in ingest["schedules"]] == [cron]
    assert all(s["active"] for s in ingest["schedules"])
    assert ingest["global_concurrency_limit"]["limit"] == 1
    assert ingest["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert ingest["work_pool_name"] == "ragline-process"
    assert ingest["parameters"] == {"path": str(tmp_path / "docs"), "collection": "ragline"}
    assert ingest["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}
    ]
    ask = deployment(prefect_api, "ask/ragline")
    assert ask["enforce_parameter_schema"] is True
    assert ask["entrypoint"] == "flows/query.py:ask"
    assert ask["work_pool_name"] == "ragline-process"


@pytest.mark.slow
def test_process_worker_answers_ask_triggered_over_rest(prefect_api, tmp_path):
    """The work-pool path: `ragline deploy`, a real `prefect worker`, a REST-triggered run."""
    corpus = small_docs(tmp_path)
    env = serve_env(prefect_api, tmp_path / "data", corpus)
    assert run_cli("ingest", str(corpus), env=env).returncode == 0
    assert run_cli("deploy", env=env).returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "ragline-process", "--limit", "1"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        ask = deployment(prefect_api, "ask/ragline")
        response = create_flow_run(prefect_api, ask["id"], {"question": QUESTION})
        assert response.status_code == 201, response.text
        run = wait_for_run(prefect_api, response.json()["id"])
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert run["state_type"] == "COMPLETED", run["state"]
    check_answer(persisted_result(run["id"]), corpus)
    assert any("### Citations" in a["data"] for a in run_artifacts(prefect_api, run["id"]))


@pytest.mark.slow
def test_ingest_on_a_local_dask_cluster(prefect_api, ragline_env, tmp_path):
    pytest.importorskip("prefect_dask", reason="the dask extra is not installed: pip install 'ragline[dask]'")
    from ragline.flows.scale import dask_task_runner
    from ragline.flows.ingest import ingest

    corpus = small_docs(tmp_path)
    runner = dask_task_runner("local")
    assert type(runner).__name__ == "DaskTaskRunner"
    summary = ingest.with_options(task_runner=runner)(path=str(corpus), collection="dask")
    assert summary["chunks"] > 0
    assert summary["counts"] == {"ingested": len(list(corpus.iterdir()))}


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
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, "QDRANT_API_KEY": "test-key"})
    assert result.returncode == 0, result.stderr
