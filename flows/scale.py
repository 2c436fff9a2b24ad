"""Scale-out for ingestion: parse and embed batches on a Dask cluster (`pip install 'ragline[dask]'`).

Set `deployments.ingest_task_runner` (RAGLINE_DEPLOYMENTS__INGEST_TASK_RUNNER) to a scheduler
address (`tcp://host:8786`) or to `local` for an in-process cluster. With the embedded store, use
`local`: its workers are threads of the flow's process, the one process allowed to open the
store. Workers on other machines need a Qdrant server store (`store.kind = "qdrant"`), which any
number of processes can write to. `ragline deploy` points process workers at this module's
`ingest` when a Dask runner is configured.
"""

from __future__ import annotations

from ragline.flows.ingest import ingest as threaded_ingest
from ragline.settings import RaglineSettings, get_settings

LOCAL = "local"


def dask_task_runner(address: str):
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise RuntimeError(
            "the Dask task runner needs the dask extra: pip install 'ragline[dask]' "
            '(or set deployments.ingest_task_runner = "threads")'
        ) from None
    if address == LOCAL:
        # Threads, not processes: the embedded store accepts a single process.
        return DaskTaskRunner(cluster_kwargs={"n_workers": 1, "processes": False, "threads_per_worker": 2})
    return DaskTaskRunner(address=address)


def scaled_ingest(settings: RaglineSettings | None = None):
    settings = settings or get_settings()
    address = settings.deployments.ingest_task_runner
    if address == "threads":
        return threaded_ingest
    return threaded_ingest.with_options(task_runner=dask_task_runner(address))


# Entrypoint `flows/scale.py:ingest` for work-pool deployments: the runner is read from settings
# when the worker loads the flow.
ingest = scaled_ingest()
