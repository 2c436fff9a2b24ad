"""The deployments ragline registers, shared by `ragline serve` and `ragline deploy`.

- `ingest/<collection>`: syncs `deployments.ingest_path` into the collection on the cron
  `deployments.ingest_cron`; deployment concurrency limit 1 with ENQUEUE, so a scheduled run that
  fires while another sync of the same collection runs waits for it instead of racing it.
  Each collection gets its own ingest deployment (named after it), hence its own limit.
  `deployments.ingest_paused` registers it paused: the schedule makes no runs until resumed.
- `ask/<deployments.name>`: question, k, sources, file_types, collection; the API validates
  parameters against the flow's schema (`enforce_parameter_schema`).

deployments/prefect.yaml declares the same two for `prefect deploy`.
"""

from __future__ import annotations

from pathlib import Path

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron

from ragline.flows.ingest import ingest
from ragline.flows.query import ask
from ragline.settings import RaglineSettings

PROJECT_DIR = Path(__file__).resolve().parents[1]
INGEST_ENTRYPOINT = "flows/ingest.py:ingest"
SCALED_INGEST_ENTRYPOINT = "flows/scale.py:ingest"
ASK_ENTRYPOINT = "flows/query.py:ask"


def ingest_flow(settings: RaglineSettings):
    """The ingest flow with the task runner the settings ask for (threads, or a Dask cluster)."""
    from ragline.flows.scale import scaled_ingest

    return scaled_ingest(settings)


def ingest_options(settings: RaglineSettings) -> dict:
    d = settings.deployments
    collection = settings.store.collection
    return dict(
        name=collection,
        schedules=[Cron(d.ingest_cron, timezone=d.timezone)],
        paused=d.ingest_paused,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        parameters={"path": str(Path(d.ingest_path).expanduser().resolve()), "collection": collection},
        tags=["ragline", f"collection:{collection}"],
        description=f"Sync {d.ingest_path} into the {collection!r} collection (one run at a time).",
        enforce_parameter_schema=True,
    )


def ask_options(settings: RaglineSettings) -> dict:
    return dict(
        name=settings.deployments.name,
        tags=["ragline"],
        description="Answer a question from the ingested documents, with citations.",
        enforce_parameter_schema=True,
    )


def ingest_deployment_name(settings: RaglineSettings, collection: str | None = None) -> str:
    return f"{ingest.name}/{collection or settings.store.collection}"


def ask_deployment_name(settings: RaglineSettings) -> str:
    return f"{ask.name}/{settings.deployments.name}"


# Job variables an API caller may NOT set on a run or deployment of ragline's pool: `command` is
# the shell command the worker runs, `env` could set PYTHONPATH/LD_PRELOAD, `working_dir` where
# code is loaded from. Without them in the template, values passed for them are ignored: the
# worker runs Prefect's own engine command in its own environment (tests/test_compose.py). An API
# caller who can create deployments can still add pull steps (run_shell_script) that run on the
# worker: Prefect's open-source server has one credential for everything, so the API login
# (PREFECT_AUTH_STRING) is what guards the workers, and is handed only to operators.
LOCKED_JOB_VARIABLES = ("command", "env", "working_dir")


def locked_process_job_template() -> dict:
    """Prefect's process job template without the variables in LOCKED_JOB_VARIABLES."""
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    for name in LOCKED_JOB_VARIABLES:
        template["variables"]["properties"].pop(name, None)
        # Gone from the job configuration too: a dict `env` there would be merged with the caller's.
        template["job_configuration"].pop(name, None)
    return template


async def ensure_process_pool(name: str) -> None:
    """Create the process work pool with the locked job template, or lock an existing one."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    template = locked_process_job_template()
    async with get_client() as client:
        try:
            pool = await client.read_work_pool(name)
        except ObjectNotFound:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
            return
        if pool.base_job_template != template:
            await client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))


async def deploy_to_work_pool(settings: RaglineSettings) -> dict[str, str]:
    """Register ingest and ask on the process work pool; returns {deployment name: id}.

    The code is pulled by a `set_working_directory` step pointing at this checkout (no git), so a
    worker on this machine (or a container with the project at the same path) runs it.
    """
    from prefect.deployments.runner import RunnerDeployment
    from prefect.runner.storage import LocalStorage

    pool = settings.deployments.work_pool
    await ensure_process_pool(pool)
    scaled = settings.deployments.ingest_task_runner != "threads"
    specs = [
        (SCALED_INGEST_ENTRYPOINT if scaled else INGEST_ENTRYPOINT, ingest_options(settings)),
        (ASK_ENTRYPOINT, ask_options(settings)),
    ]
    ids = {}
    for entrypoint, options in specs:
        deployment = await RunnerDeployment.afrom_storage(
            storage=LocalStorage(str(PROJECT_DIR)),
            entrypoint=entrypoint,
            work_pool_name=pool,
            **options,
        )
        ids[f"{deployment.flow_name}/{deployment.name}"] = str(await deployment.aapply())
    return ids
