"""The query path behind the chat API and MCP: `ragline ask`'s retrieve + answer on warm models.

One AnswerService lives in the serving process. Each request:
1. is admitted or refused (QueueFull: at most `serve.max_queue` requests in the service at once),
2. has a follow-up question made standalone (ragline.conversation) when there are earlier turns,
3. retrieves with `answering.retrieve` (a small thread pool: the store and embedder are thread-safe),
4. is answered with `answering.answer_question` (extractive or grounded generation, as `ragline ask`)
   on the ONE answer thread: a llama.cpp context is not thread-safe, and a single FIFO thread
   also answers requests in arrival order. Streaming receives the generated tokens through its
   `on_token` hook, so a streamed answer runs the very same code,
5. is handed to the Recorder, which writes it to Prefect after the response (deployments/recording.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from ragline import answering, backends
from ragline.conversation import Turn, standalone_question
from ragline.deployments.recording import Recorder, RequestRecord
from ragline.embedders import get_embedder
from ragline.generators import get_generator
from ragline.prompting import citations_from_hits
from ragline.records import Answer, Hit
from ragline.retrieval import retrieval_options
from ragline.settings import RaglineSettings
from ragline.store import SearchFilter, open_store
from ragline.store.manifest import MANIFEST_SUFFIX, STAGING_SUFFIX
from ragline.support import cross_encoder_scorer

RETRY_AFTER_S = 5
logger = logging.getLogger("ragline.serve")


class QueueFull(RuntimeError):
    """More requests than `serve.max_queue` are in the service; the client should retry later."""


class RequestCancelled(RuntimeError):
    """The client went away while its answer was being generated."""


class Admission:
    """A bounded queue: at most `limit` requests admitted (answering or waiting), others refused."""

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.active >= self.limit:
                raise QueueFull(
                    f"ragline is answering {self.active} requests, its limit (serve.max_queue); retry in "
                    f"{RETRY_AFTER_S} s, or raise serve.max_queue"
                )
            self.active += 1

    def leave(self) -> None:
        with self._lock:
            self.active -= 1

    @contextmanager
    def admitted(self):
        self.enter()
        try:
            yield
        finally:
            self.leave()


def token_hook(on_delta: Callable[[str], None], cancelled: threading.Event) -> Callable[[str], None]:
    """Hand each generated token to the stream; stop generating once the client has gone."""

    def hook(token: str) -> None:
        if cancelled.is_set():
            raise RequestCancelled("the client disconnected")
        on_delta(token)

    return hook


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class AskRequest:
    question: str
    history: list[Turn] = field(default_factory=list)
    collection: str | None = None
    k: int | None = None
    sources: list[str] | None = None
    file_types: list[str] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    kind: str = "chat"
    request_id: str = field(default_factory=new_request_id)


@dataclass
class ServedAnswer:
    request_id: str
    asked: str  # the user's last message
    question: str  # what was retrieved and answered: `asked`, or its standalone rewrite
    rewrite: str  # kept / model / heuristic
    collection: str
    answer: Answer
    hits: list[Hit]
    timings: dict[str, float]


def search_filter(sources: list[str] | None, file_types: list[str] | None) -> SearchFilter:
    return SearchFilter(tuple(sources or ()), tuple(f.lower().lstrip(".") for f in file_types or ()))


def passages(hits: list[Hit]) -> list[dict]:
    """Numbered passages with their sources, the shape of `ragline ask --json` citations."""
    return [c.model_dump() for c in citations_from_hits(hits)]


class AnswerService:
    def __init__(self, settings: RaglineSettings, recorder: Recorder | None = None):
        self.settings = settings
        self.embedder = get_embedder(backends.embedder_spec(settings))
        self.generator = get_generator(backends.generator_spec(settings))
        self.store = open_store(settings)
        self.options = retrieval_options(settings)
        support_model = settings.answer.support_model
        self.pair_scorer = cross_encoder_scorer(support_model) if support_model else None
        self.recorder = recorder or Recorder(enabled=False)
        self.admission = Admission(settings.serve.max_queue)
        self._generation = ThreadPoolExecutor(1, thread_name_prefix="generation")
        self._retrieval = ThreadPoolExecutor(2, thread_name_prefix="retrieval")

    def warm_up_generation(self) -> None:
        """One token on the answer thread, in the background: llama.cpp's first evaluation is
        several times slower than the next ones, and the first client should not pay for it."""

        def one_token():
            try:
                self.generator.generate([{"role": "user", "content": "Hello"}], 1, 0.0)
            except Exception as exc:  # the first real request will report it properly
                logger.warning("generator warm-up failed: %s", exc)

        self._generation.submit(one_token)

    # -- the calls into ragline.answering: the same code `ragline ask` runs (tasks/query.py) --------

    def check(self, question: str, k: int | None) -> None:
        answering.check_query(question, k)  # ValueError: the message says what to change

    def _retrieve(self, question: str, k: int, filters: SearchFilter, collection: str) -> list[Hit]:
        return answering.retrieve(question, k, filters, self.embedder, self.store, collection, self.options)

    def _answer(self, question: str, hits: list[Hit], settings: RaglineSettings, on_token) -> Answer:
        started = time.perf_counter()
        answer = answering.answer_question(
            question, hits, settings, self.embedder, lambda: self.generator, on_token, self.pair_scorer
        )
        answer.timings = {**answer.timings, "answer_s": round(time.perf_counter() - started, 3)}
        return answer

    # -----------------------------------------------------------------------------------------

    def collections(self) -> list[str]:
        """Names of the ragline collections in the store (companions like `C__manifest` left out)."""
        if self.settings.store.kind == "edge":
            names = [p.stem for p in (self.settings.store_path / "edge").glob("*.json")]
        else:
            names = [c.name for c in self.store.client.get_collections().collections]
        names = [n for n in names if not n.endswith((MANIFEST_SUFFIX, STAGING_SUFFIX))]
        return sorted(n for n in names if self._is_ragline_collection(n))

    def _is_ragline_collection(self, name: str) -> bool:
        try:
            return self.store.collection_info(name) is not None
        except RuntimeError:  # a Qdrant collection ragline did not make
            return False

    def collection_details(self, name: str) -> dict | None:
        info = self._is_ragline_collection(name) and self.store.collection_info(name)
        if not info:
            return None
        return {"name": name, "model": f"ragline:{name}", "chunks": self.store.count(name), **info.__dict__}

    async def _in(self, pool: ThreadPoolExecutor, fn, *args) -> tuple[object, float]:
        """Run fn in the pool; returns (result, seconds it waited for a thread)."""
        submitted = time.perf_counter()
        started: list[float] = []

        def timed():
            started.append(time.perf_counter())
            return fn(*args)

        result = await asyncio.get_running_loop().run_in_executor(pool, timed)
        return result, started[0] - submitted

    async def search(self, query: str, k: int, collection: str | None, filters: SearchFilter) -> tuple[str, list]:
        self.check(query, k)
        collection = collection or self.settings.store.collection
        started = time.perf_counter()
        hits, _ = await self._in(self._retrieval, self._retrieve, query, k, filters, collection)
        request_id = new_request_id()
        found = passages(hits)
        timings = {"retrieve_s": round(time.perf_counter() - started, 3)}
        self.recorder.submit(RequestRecord("mcp-search", request_id, query, collection, timings, passages=found))
        return request_id, found

    def _request_settings(self, request: AskRequest) -> RaglineSettings:
        g = self.settings.generation
        update = {}
        if request.max_tokens is not None:
            update["max_tokens"] = max(1, min(request.max_tokens, g.max_tokens))
        if request.temperature is not None:
            update["temperature"] = request.temperature
        if not update:
            return self.settings
        return self.settings.model_copy(update={"generation": g.model_copy(update=update)})

    async def _standalone(self, request: AskRequest) -> tuple[str, str, float, float]:
        """(question, how, seconds waited for the generator, seconds rewriting)."""
        serve = self.settings.serve
        if serve.rewrite_followups == "off" or not request.history:
            return request.question, "kept", 0.0, 0.0
        started = time.perf_counter()
        rewrite = functools.partial(
            standalone_question, request.question, request.history, self.generator, serve.rewrite_followups
        )
        (question, how), waited = await self._in(self._generation, rewrite, serve.rewrite_max_tokens)
        return question, how, waited, time.perf_counter() - started - waited

    async def answer(
        self,
        request: AskRequest,
        on_delta: Callable[[str], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> ServedAnswer:
        """Answer one request (the caller holds an Admission slot); streamed pieces go to on_delta."""
        started = time.perf_counter()
        self.check(request.question, request.k)
        collection = request.collection or self.settings.store.collection
        question, how, rewrite_wait, rewrite_s = await self._standalone(request)
        filters = search_filter(request.sources, request.file_types)
        retrieve_started = time.perf_counter()
        k = request.k or self.settings.retrieval.k
        hits, _ = await self._in(self._retrieval, self._retrieve, question, k, filters, collection)
        retrieve_s = time.perf_counter() - retrieve_started
        on_token = token_hook(on_delta, cancelled or threading.Event()) if on_delta is not None else None
        settings = self._request_settings(request)
        answer, generate_wait = await self._in(self._generation, self._answer, question, hits, settings, on_token)
        answer.timings = {
            "queue_s": round(rewrite_wait + generate_wait, 3),
            "rewrite_s": round(rewrite_s, 3),
            "retrieve_s": round(retrieve_s, 3),
            **answer.timings,
            "total_s": round(time.perf_counter() - started, 3),
        }
        served = ServedAnswer(
            request.request_id, request.question, question, how, collection, answer, hits, answer.timings
        )
        record = RequestRecord(request.kind, served.request_id, question, collection, answer.timings, answer=answer)
        self.recorder.submit(record)
        return served

    def close(self, drain_s: float = 30.0) -> None:
        self._generation.shutdown(wait=False, cancel_futures=True)
        self._retrieval.shutdown(wait=False, cancel_futures=True)
        self.recorder.close(drain_s)
