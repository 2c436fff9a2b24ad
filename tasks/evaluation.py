"""Prefect task wrappers for evaluation: each call handles a dataset or a batch of queries."""

from __future__ import annotations

from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

from ragline import answering, backends
from ragline.embedders import get_embedder
from ragline.evaluation import metrics as evaluation
from ragline.retrieval import retrieval_options
from ragline.settings import RaglineSettings
from ragline.store import open_store


# Results must never be reused across runs, and hashing thousands of queries for a cache key is waste.
@task(name="load-dataset", cache_policy=NO_CACHE)
def load_dataset(dataset_dir: str, limit_queries: int | None, max_docs: int | None = None) -> evaluation.BeirDataset:
    dataset = evaluation.load_beir(dataset_dir, limit_queries=None if max_docs else limit_queries)
    return dataset.sample(max_docs, limit_queries) if max_docs else dataset


@task(name="write-corpus", cache_policy=NO_CACHE)
def write_corpus(dataset: evaluation.BeirDataset, folder: str) -> dict[str, str]:
    return evaluation.write_documents(dataset, folder)


@task(name="retrieve-batch", cache_policy=NO_CACHE)
def retrieve_batch(
    queries: list[tuple[str, str]],
    settings: RaglineSettings,
    collection: str,
    mode: str,
    source_to_doc: dict[str, str],
) -> dict[str, list[str]]:
    """Rank corpus ids for a batch of queries through the same retrieval path `ragline ask` uses."""
    embedder = get_embedder(backends.embedder_spec(settings))
    search = partial(
        _search,
        embedder=embedder,
        store=open_store(settings),
        collection=collection,
        options=retrieval_options(settings, mode),
    )
    return evaluation.retrieve_run(queries, search, source_to_doc)


def _search(question: str, k: int, embedder, store, collection: str, options):
    return answering.retrieve(question, k, None, embedder, store, collection, options)


@task(name="direct-dense-baseline", cache_policy=NO_CACHE)
def direct_dense_baseline(dataset: evaluation.BeirDataset, settings: RaglineSettings) -> dict[str, list[str]]:
    return evaluation.direct_dense_run(dataset, get_embedder(backends.embedder_spec(settings)))


@task(name="score-run", cache_policy=NO_CACHE)
def score_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    return evaluation.mean_metrics(run, qrels)


@task(name="embedder-name", cache_policy=NO_CACHE)
def embedder_name(settings: RaglineSettings) -> str:
    return get_embedder(backends.embedder_spec(settings)).name


@task(name="drop-collection", cache_policy=NO_CACHE)
def drop_collection(settings: RaglineSettings, collection: str) -> None:
    open_store(settings).drop_collection(collection)
