"""`ragline serve`: every flow and the query worker in ONE long-lived process.

Why not `prefect.serve()`: its runner starts a fresh subprocess for each flow run. The embedded
Qdrant engine can be opened by one process only, so a scheduled ingest and a query in two
subprocesses would lock each other out, and each subprocess would load the models again. This
module registers the same deployments `prefect.serve()` would (schedules active while it runs),
polls the Prefect API for their due runs and executes them in threads of this process, where the
store, the embedding model and the instruct model are opened once. Next to it runs a Prefect task
worker for the low-latency path (deployments/worker.py), and the OpenAI-compatible chat API and MCP
server on `serve.host`:`serve.port` (deployments/http_server.py). Runs keep what lives on the server: states,
logs, artifacts, the deployment concurrency limit. A thread cannot be killed, so cancelling a run that
already started (Cancel in the UI: the run goes Cancelling) is cooperative: the runner sees it and the
flow stops at its next batch boundary, releasing its ingest lock and keeping what it committed
(ragline/tasks/cancellation.py); the run then ends Cancelled. Scheduled and queued runs cancel as usual.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.exceptions import Abort
from prefect.flow_engine import run_flow
from prefect.flows import Flow
from prefect.states import Cancelled, Pending
from prefect.task_worker import TaskWorker
from prefect.utilities.engine import propose_state

from ragline.deployments.register import ask_options, ingest_flow, ingest_options
from ragline.deployments.worker import answer_question
from ragline.flows.query import ask
from ragline.settings import RaglineSettings
from ragline.tasks.cancellation import cancel_requested, clear_cancel, request_cancel

POLL_SECONDS = 0.5
logger = logging.getLogger("ragline.serve")


async def served_deployments(settings: RaglineSettings) -> list:
    """(deployment, flow) pairs: results persisted so any process on the API can read them."""
    ingest_served = ingest_flow(settings).with_options(persist_result=True)
    ask_served = ask.with_options(persist_result=True)
    return [
        (await ingest_served.ato_deployment(**ingest_options(settings)), ingest_served),
        (await ask_served.ato_deployment(**ask_options(settings)), ask_served),
    ]


async def register(settings: RaglineSettings) -> dict[UUID, Flow]:
    """Create or update the served deployments; schedules are (re)activated, the ingest one unless
    `deployments.ingest_paused` asks for it paused (pause_schedules paused them at the last stop)."""
    flows_by_id: dict[UUID, Flow] = {}
    async with get_client() as client:
        for deployment, flow in await served_deployments(settings):
            deployment_id = await deployment.aapply()
            if not deployment.paused:
                await client.resume_deployment(deployment_id)
            flows_by_id[deployment_id] = flow
    return flows_by_id


async def pause_schedules(deployment_ids) -> None:
    """No scheduled runs should pile up for a server that is not running."""
    async with get_client() as client:
        for deployment_id in deployment_ids:
            try:
                await client.pause_deployment(deployment_id)
            except Exception as exc:  # shutting down: report, never mask the real exit reason
                logger.warning("could not pause deployment %s: %s", deployment_id, exc)


class InProcessRunner:
    """Polls for due runs of the served deployments and runs each in a thread of this process."""

    def __init__(self, flows_by_id: dict[UUID, Flow], concurrency: int):
        self.flows_by_id = flows_by_id
        self.concurrency = concurrency
        self.in_flight: set[UUID] = set()
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="flow-run")

    async def run(self, stop: asyncio.Event) -> None:
        async with get_client() as client:
            while not stop.is_set():
                try:
                    await self.submit_due_runs(client)
                    await self.forward_cancellations(client)
                except Exception as exc:  # the API restarting must not end the server
                    logger.warning("polling the Prefect API failed, retrying: %s", exc)
                try:
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass
        self._executor.shutdown(wait=True)

    async def submit_due_runs(self, client) -> None:
        free = self.concurrency - len(self.in_flight)
        if free <= 0:
            return
        # Only runs due now: ingest runs waiting for their concurrency slot are rescheduled later.
        runs = await client.get_scheduled_flow_runs_for_deployments(
            deployment_ids=list(self.flows_by_id), scheduled_before=datetime.now(UTC), limit=free + 8
        )
        for flow_run in runs:
            if flow_run.id in self.in_flight or len(self.in_flight) >= self.concurrency:
                continue
            if await self.claim(client, flow_run):
                self.in_flight.add(flow_run.id)
                asyncio.get_running_loop().run_in_executor(self._executor, self.execute, flow_run)

    async def forward_cancellations(self, client) -> None:
        """Runs of ours that went Cancelling in the API: ask their flows to stop at the next batch."""
        if not self.in_flight:
            return
        cancelling = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=list(self.in_flight)),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CANCELLING])),
            )
        )
        for flow_run in cancelling:
            if not cancel_requested(flow_run.id):
                logger.info("flow run %s: cancel requested, stopping at its next batch", flow_run.name)
                request_cancel(flow_run.id)

    async def claim(self, client, flow_run) -> bool:
        """Scheduled -> Pending; the server refuses it when the deployment's limit is reached."""
        try:
            state = await propose_state(client, Pending(), flow_run_id=flow_run.id)
        except Abort:
            return False  # another runner took it, or it was cancelled meanwhile
        return state.is_pending()

    def execute(self, flow_run) -> None:
        flow = self.flows_by_id[flow_run.deployment_id]
        state = None
        try:
            state = run_flow(flow, flow_run=flow_run, return_type="state")
            logger.info("flow run %s (%s) finished: %s", flow_run.name, flow.name, state.type.value)
        except BaseException as exc:  # the engine already recorded the failure on the run
            logger.warning("flow run %s (%s) raised: %s", flow_run.name, flow.name, exc)
        finally:
            # A run that finished before it reached a cancellation point keeps its result.
            if clear_cancel(flow_run.id) and not (state is not None and (state.is_completed() or state.is_cancelled())):
                mark_cancelled(flow_run)
            self.in_flight.discard(flow_run.id)


def mark_cancelled(flow_run) -> None:
    """A run stopped at a cancellation point the flow did not turn into Cancelled (a flow without
    @cancellable, or a task the server refused to start) ends Failed; the user asked for Cancel."""
    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                flow_run.id, Cancelled(message="Cancelled from the Prefect API while it ran"), force=True
            )
    except Exception as exc:  # the run stays Failed, with the cancellation in its message
        logger.warning("could not mark flow run %s Cancelled: %s", flow_run.name, exc)


async def serve_forever(settings: RaglineSettings, stop: asyncio.Event, ready=None) -> None:
    """Register, then run the deployment runner and the query task worker until `stop` is set."""
    flows_by_id = await register(settings)
    concurrency = settings.deployments.serve_concurrency
    runner = InProcessRunner(flows_by_id, concurrency)
    task_worker = TaskWorker(answer_question, limit=concurrency)
    worker_task = asyncio.create_task(task_worker.astart())
    http = None
    try:
        if settings.serve.enabled:  # the chat API and MCP (deployments/http_server.py)
            from ragline.deployments.http_server import start_http_server

            http = await asyncio.to_thread(start_http_server, settings)
        if ready is not None:
            ready(flows_by_id)
        await runner.run(stop)
    finally:
        if http is not None:
            await asyncio.to_thread(http.stop)
        worker_task.cancel()
        await asyncio.gather(worker_task, return_exceptions=True)
        await pause_schedules(flows_by_id)
