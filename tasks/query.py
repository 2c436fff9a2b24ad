"""Prefect task wrappers for answering a question."""

from __future__ import annotations

from prefect import task

from ragline import answering, backends
from ragline.embedders import get_embedder
from ragline.generators import get_generator
from ragline.records import Answer, Hit
from ragline.retrieval import retrieval_options
from ragline.settings import RaglineSettings
from ragline.store import SearchFilter, open_store


@task(name="retrieve")
def retrieve(
    question: str,
    k: int,
    filters: SearchFilter | None,
    settings: RaglineSettings,
    collection: str,
    mode: str | None = None,
) -> list[Hit]:
    """Retrieve in `mode` (default: retrieval.mode from settings)."""
    embedder = get_embedder(backends.embedder_spec(settings))
    options = retrieval_options(settings, mode)
    return answering.retrieve(question, k, filters, embedder, open_store(settings), collection, options)


@task(name="generate-answer")
def generate_answer(question: str, hits: list[Hit], settings: RaglineSettings) -> Answer:
    generator = get_generator(backends.generator_spec(settings))
    return answering.generate_answer(question, hits, generator, settings)
