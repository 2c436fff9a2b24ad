"""Prefect task wrappers for `ragline models bench`: one task per backend measured."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from ragline.evaluation import model_bench


@task(name="measure-backend", cache_policy=NO_CACHE)
def measure_backend(kind: str, backend: str, arguments: list[str]) -> model_bench.WorkerResult:
    return model_bench.run_worker(kind, backend, arguments)
