"""Run ragline's deployments through the Prefect API and read their persisted results.

Used by `ragline ask --remote` and by `ragline ingest` / `ragline ask` when `ragline serve` owns
the embedded store. Results are read from the run's persisted result (the same result storage on
this machine, or shared storage in a cluster).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect.client.orchestration import get_client
from prefect.exceptions import FlowRunWaitTimeout, ObjectNotFound
from prefect.flow_runs import wait_for_flow_run


class RemoteRunError(RuntimeError):
    """A deployment could not be run, or its run did not complete; the message says what to do."""


async def atrigger(deployment_name: str, parameters: dict[str, Any]):
    """Create a flow run of the deployment (what the REST API's create_flow_run does)."""
    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(deployment_name)
        except ObjectNotFound:
            raise RemoteRunError(
                f"no deployment {deployment_name!r} on the Prefect API: run `ragline deploy` (and a "
                "worker) or `ragline serve` first"
            ) from None
        return await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)


async def await_result(flow_run_id, timeout_s: float) -> Any:
    """Wait for the run to finish and return its persisted result."""
    try:
        flow_run = await wait_for_flow_run(flow_run_id, timeout=int(timeout_s))
    except FlowRunWaitTimeout:
        raise RemoteRunError(
            f"flow run {flow_run_id} did not finish within {timeout_s:.0f} s: is a worker or "
            "`ragline serve` running for this Prefect API? It stays queued until one picks it up."
        ) from None
    state = flow_run.state
    if not state.is_completed():
        raise RemoteRunError(
            f"flow run {flow_run.name} ended {state.name}: {state.message or 'see its logs in the Prefect UI'}"
        )
    return await state.aresult()


def run_deployment_for_result(deployment_name: str, parameters: dict[str, Any], timeout_s: float) -> Any:
    async def trigger_and_wait():
        flow_run = await atrigger(deployment_name, parameters)
        return await await_result(flow_run.id, timeout_s)

    return asyncio.run(trigger_and_wait())
