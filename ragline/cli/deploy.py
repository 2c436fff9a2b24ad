"""`ragline deploy`, `ragline serve`, and routing CLI work to a running `ragline serve`.

Registered on the main app in ragline/cli/app.py. Prefect is imported inside the commands only.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from ragline.cli.common import connect_prefect, console, fail, load_settings, out
from ragline.settings import RaglineSettings
from ragline.settings.config import DeploymentSettings
from ragline.store.ownership import StoreBusyError, claim, current_owner, owns_embedded_store

REMOTE_TIMEOUT_S = 600.0
INGEST_TIMEOUT_S = 6 * 3600.0


def deploy() -> None:
    """Register the ingest (cron from settings) and ask deployments on a process work pool."""
    settings = load_settings()
    api_url = connect_prefect(settings)
    from ragline.deployments.register import deploy_to_work_pool

    if owns_embedded_store(settings):
        console.print(
            "[yellow]note:[/] the embedded store allows one process at a time; a process worker runs "
            "each flow run in its own process, so run one worker with no `ragline serve` on this "
            'data dir, or use a Qdrant server (store.kind = "qdrant").'
        )
    try:
        ids = asyncio.run(deploy_to_work_pool(settings))
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    d = settings.deployments
    for name, deployment_id in ids.items():
        out.print(f"{name}  {deployment_id}")
    out.print(f"\ningest schedule: {ingest_schedule(d)}, path {d.ingest_path}")
    out.print(f"Start a worker:  prefect worker start --pool {d.work_pool}   (PREFECT_API_URL={api_url})")


def ingest_schedule(d: DeploymentSettings) -> str:
    schedule = f"{d.ingest_cron} ({d.timezone})"
    return f"{schedule}, PAUSED: resume it in the Prefect UI" if d.ingest_paused else schedule


def serve() -> None:
    """Run the flows, their schedules, the query worker, and the OpenAI-compatible chat API + MCP server."""
    settings = load_settings()
    api_url = connect_prefect(settings)
    try:
        lock = claim(settings, api_url) if owns_embedded_store(settings) else None
    except StoreBusyError as exc:
        fail(str(exc))
    from ragline.deployments.http_server import HttpServerError

    try:
        warm_up(settings)
        asyncio.run(_serve_until_signal(settings, api_url))
    except HttpServerError as exc:
        fail(str(exc))
    finally:
        if lock is not None:
            lock.release()
        from ragline.store import close_stores

        close_stores()


def warm_up(settings: RaglineSettings) -> None:
    """Load both models and open the store now, so the first query pays nothing extra."""
    from ragline.answering import load_answer_models
    from ragline.store import open_store

    with console.status("loading models and opening the store..."):
        load_answer_models(settings)
        try:
            open_store(settings).count(settings.store.collection)
        except Exception as exc:  # e.g. the WAL lock of a one-shot `ragline ingest` still running
            fail(
                f"could not open the store at {settings.store_path}: {exc}. Is another ragline "
                "command using it? Wait for it to finish, then start `ragline serve` again."
            )


async def _serve_until_signal(settings: RaglineSettings, api_url: str) -> None:
    from ragline.deployments.serve import serve_forever

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def ready(flows_by_id) -> None:
        d = settings.deployments
        console.print(
            f"[bold green]serving[/] {len(flows_by_id)} deployments on {api_url} "
            f"(ingest schedule {ingest_schedule(d)}); query worker ready. Ctrl-C stops."
        )
        console.print(f"Prefect UI: {api_url.removesuffix('/api')}")
        if settings.serve.enabled:
            base = f"http://{settings.serve.host}:{settings.serve.port}"
            console.print(f"OpenAI-compatible chat API: {base}/v1   MCP (streamable HTTP): {base}/mcp")

    await serve_forever(settings, stop, ready=ready)


def served_elsewhere(settings: RaglineSettings) -> bool:
    """True when a `ragline serve` process owns this data dir's embedded store."""
    return current_owner(settings) is not None


def route_ask(settings: RaglineSettings, params: dict[str, Any], via_deployment: bool) -> dict:
    """Answer through Prefect: the `ask` deployment, or the running query worker (faster)."""
    from ragline.deployments.client import RemoteRunError, run_deployment_for_result
    from ragline.deployments.register import ask_deployment_name

    try:
        if via_deployment:
            return run_deployment_for_result(ask_deployment_name(settings), params, REMOTE_TIMEOUT_S)
        from ragline.deployments.worker import ask_via_worker

        return ask_via_worker(REMOTE_TIMEOUT_S, **params)
    except (RemoteRunError, TimeoutError) as exc:
        fail(str(exc))
    except Exception as exc:  # the flow's own error, re-raised from its persisted state
        fail(f"the remote query failed: {exc}")


def route_ingest(
    settings: RaglineSettings,
    path: str,
    collection: str | None,
    prune: bool,
    reembed: bool = False,
    allow_mass_delete: bool = False,
) -> dict | None:
    """When `ragline serve` owns the store, run the ingest deployment there; else None."""
    if not served_elsewhere(settings):
        return None
    from ragline.deployments.client import RemoteRunError, run_deployment_for_result
    from ragline.deployments.register import ingest_deployment_name

    name = ingest_deployment_name(settings, collection)
    console.print(f"`ragline serve` owns the store: running the {name} deployment there.")
    params = {
        "path": str(Path(path).resolve()),
        "collection": collection or settings.store.collection,
        "prune": prune,
        "reembed": reembed,
        "allow_mass_delete": allow_mass_delete,
    }
    try:
        return run_deployment_for_result(name, params, INGEST_TIMEOUT_S)
    except RemoteRunError as exc:
        fail(str(exc))
