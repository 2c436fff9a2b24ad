"""Prefect task wrappers for answering a question."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ragline import answering, backends
from ragline.embedders import get_embedder
from ragline.generators import get_generator
from ragline.records import Answer, Hit
from ragline.retrieval import retrieval_options
from ragline.settings import RaglineSettings
from ragline.store import SearchFilter, open_store
from ragline.support import cross_encoder_scorer


# Not cached or persisted: the hits and answer reach the flow in memory; the flow persists the answer.
@task(name="retrieve", cache_policy=NO_CACHE, persist_result=False)
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


@task(name="generate-answer", cache_policy=NO_CACHE, persist_result=False)
def generate_answer(question: str, hits: list[Hit], settings: RaglineSettings) -> Answer:
    """The checked answer in answer.mode; generated tokens stream into this task run's log."""
    embedder = get_embedder(backends.embedder_spec(settings))
    pair_scorer = cross_encoder_scorer(settings.answer.support_model) if settings.answer.support_model else None
    return answering.answer_question(
        question,
        hits,
        settings,
        embedder,
        lambda: get_generator(backends.generator_spec(settings)),
        on_token=StreamLog(get_run_logger()),
        pair_scorer=pair_scorer,
    )


class StreamLog:
    """Logs the answer so far at each sentence end (at most every LOG_EVERY_S seconds), so a UI
    user watching a long generation sees it progress."""

    LOG_EVERY_S = 2.0

    def __init__(self, logger):
        self.logger = logger
        self.parts: list[str] = []
        self.started = self.logged = time.perf_counter()

    def __call__(self, token: str) -> None:
        now = time.perf_counter()
        if not self.parts:
            self.logger.info("first token after %.2f s", now - self.started)
        self.parts.append(token)
        if token.rstrip().endswith((".", "!", "?", "\n")) and now - self.logged >= self.LOG_EVERY_S:
            self.logged = now
            self.logger.info(
                "answer so far (%d tokens, %.1f s): %s", len(self.parts), now - self.started, "".join(self.parts)
            )
