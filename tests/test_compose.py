"""The compose stack is secure by default: checks on the configuration Compose itself renders.

`docker-compose config` interpolates .env-style variables and validates the file without a
Docker engine (none runs here); where no Compose CLI is installed, the same checks run on the
YAML with Compose's interpolation rules applied by `render_without_cli` (and say so).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
SECRETS = {
    "QDRANT_API_KEY": "qdrant-test-key",
    "POSTGRES_PASSWORD": "pg-test-pw",
    "PREFECT_AUTH_STRING": "admin:t0ps3cret",
}


def compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


_VAR = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def render_without_cli(env: dict) -> dict:
    """Compose's interpolation (${VAR}, ${VAR:-default}, ${VAR:?error}) on the YAML text."""

    def substitute(match):
        name, op, arg = match.groups()
        value = env.get(name)
        if value:
            return value
        if op == "?":
            raise ValueError(f"missing mandatory value {name}: {arg}")
        return arg if op == "-" else ""

    return yaml.safe_load(_VAR.sub(substitute, COMPOSE.read_text()))


def render(env: dict, tmp_path) -> dict:
    """The rendered configuration for these variables only (an empty env file: no local .env)."""
    cli = compose_cli()
    if cli is None:
        return render_without_cli(env)
    empty = tmp_path / "empty.env"
    empty.write_text("")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "RAGLINE_BIND_ADDRESS"}
    result = subprocess.run(
        [*cli, "--env-file", str(empty), "-f", str(COMPOSE), "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**clean, **env},
    )
    if result.returncode != 0:
        raise ValueError(result.stderr)
    return yaml.safe_load(result.stdout)


def published(service: dict) -> list[str]:
    """Published ports as HOST_IP:HOST:CONTAINER strings (Compose renders the short syntax)."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ports.append(f"{port.get('host_ip', '')}:{port.get('published')}:{port.get('target')}")
        else:
            ports.append(str(port))
    return ports


def test_rendered_stack_requires_auth_and_binds_loopback(tmp_path):
    config = render(SECRETS, tmp_path)
    services = config["services"]
    server, worker, qdrant = services["prefect-server"], services["ragline-worker"], services["qdrant"]
    # Prefect's basic auth on the server, and the same user:password on its clients.
    assert server["environment"]["PREFECT_SERVER_API_AUTH_STRING"] == SECRETS["PREFECT_AUTH_STRING"]
    assert worker["environment"]["PREFECT_API_AUTH_STRING"] == SECRETS["PREFECT_AUTH_STRING"]
    # Only loopback is published by default; Qdrant and Postgres are not published at all.
    assert published(server) and all(p.startswith("127.0.0.1:") for p in published(server)), published(server)
    for name, service in services.items():
        assert all(p.startswith("127.0.0.1:") for p in published(service)), (name, published(service))
    assert "ports" not in qdrant and "ports" not in services["postgres"]
    assert qdrant["environment"]["QDRANT__SERVICE__API_KEY"] == SECRETS["QDRANT_API_KEY"]
    assert worker["environment"]["RAGLINE_STORE__API_KEY"] == SECRETS["QDRANT_API_KEY"]
    assert f":{SECRETS['POSTGRES_PASSWORD']}@" in server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert worker["user"] not in ("root", "0", "0:0")
    # Exposing the UI is an explicit opt-in.
    exposed = render({**SECRETS, "RAGLINE_BIND_ADDRESS": "0.0.0.0"}, tmp_path)
    assert all(p.startswith("0.0.0.0:") for p in published(exposed["services"]["prefect-server"]))


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_stack_refuses_to_start_without_a_secret(missing, tmp_path):
    """No default key or password: the stack does not render without each one."""
    with pytest.raises(ValueError, match=missing):
        render({k: v for k, v in SECRETS.items() if k != missing}, tmp_path)


def test_no_secret_goes_into_the_image():
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".env.*", "**/.env"} <= ignored, "COPY . . would bake .env (QDRANT_API_KEY) into the image"
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.strip().startswith(("ENV", "ARG")) or line.startswith("    "):
            assert not re.search(r"API_KEY|PASSWORD|AUTH_STRING|SECRET", line), line
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.M)
    assert users and users[-1] not in ("root", "0"), "the image must end with a non-root USER"
    assert dockerfile.rfind("USER ") > dockerfile.rfind("COPY "), "USER must come after the last COPY"


def test_work_pool_ignores_command_and_env_from_api_callers(prefect_api):
    """What a caller puts in a run's job_variables cannot change the process the worker starts."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.workers.process import ProcessJobConfiguration

    from ragline.deployments.register import LOCKED_JOB_VARIABLES, ensure_process_pool

    hostile = {"command": "sh -c 'touch /tmp/pwned'", "env": {"LD_PRELOAD": "/tmp/evil.so"}, "working_dir": "/"}

    async def prepared():
        await ensure_process_pool("locked-pool-test")
        async with get_client() as client:
            template = (await client.read_work_pool("locked-pool-test")).base_job_template
            return template, await ProcessJobConfiguration.from_template_and_values(template, hostile, client=client)

    template, configuration = asyncio.run(prepared())
    assert not set(LOCKED_JOB_VARIABLES) & set(template["variables"]["properties"])
    assert configuration.command is None  # the worker builds Prefect's own engine command
    assert "LD_PRELOAD" not in configuration.env
    assert configuration.working_dir is None
