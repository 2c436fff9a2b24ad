"""Answer a question: retrieve passages, then answer extractively or by grounded generation (no Prefect here).

Every answer comes back checked (ragline.grounding): its sentences, the passages each cites and
whether they support it; `citations` are the passages the answer cites, `context` the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field

from ragline import retrieval
from ragline.embedders import Embedder
from ragline.extractive import context_windows, extractive_answer
from ragline.generators import Generator
from ragline.grounding import GroundingOptions, ground
from ragline.models.catalog import load_catalog
from ragline.prompting import build_grounded_messages, build_messages, citations_from_hits
from ragline.records import Answer, Citation, Hit
from ragline.retrieval import RetrievalOptions
from ragline.settings import RaglineSettings
from ragline.store import SearchFilter, VectorStore, collection_for
from ragline.support import EmbeddingCache, PairScorer, SupportScorer
from ragline.timing import seconds_since

# Models under this many billion parameters answer extractively when answer.mode is "auto".
SMALL_MODEL_PARAMS_B = 1.0
MAX_K = 50
MAX_QUESTION_CHARS = 2000

NO_PASSAGES = "No passage matched the question, so there is nothing to answer from (check --source / --file-type)."
TokenHook = Callable[[str], None]
_token_hook: TokenHook | None = None


def set_token_hook(hook: TokenHook | None) -> None:
    """A process-local receiver of generated tokens as they arrive (the CLI prints them)."""
    global _token_hook
    _token_hook = hook


def check_question(question: str) -> str:
    """The question, or ValueError with the fix when it cannot be answered (empty, too long)."""
    if not question or not question.strip():
        raise ValueError('the question is empty: ask something, e.g. ragline ask "What is ragline?"')
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(
            f"the question is {len(question):,} characters long; ask in at most {MAX_QUESTION_CHARS:,} "
            "(put long text in a document and ingest it)"
        )
    return question


def check_query(question: str, k: int | None) -> None:
    """Raise ValueError with the fix when the question or k cannot be answered."""
    check_question(question)
    if k is not None and not 1 <= k <= MAX_K:
        raise ValueError(f"k = {k} is out of range: retrieve between 1 and {MAX_K} passages (--k 5)")


# The same rules as parameter types: a flow's run parameters are validated against them before it
# runs (and the Prefect UI's form shows the bounds), so the flow needs no check_query of its own.
Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS), AfterValidator(check_question)]
PassageCount = Annotated[int, Field(ge=1, le=MAX_K)]


def retrieve(
    question: str,
    k: int,
    filters: SearchFilter | None,
    embedder: Embedder,
    store: VectorStore,
    collection: str,
    options: RetrievalOptions | None = None,
) -> list[Hit]:
    if store.collection_info(collection) is None:
        raise LookupError(f"collection {collection!r} is empty: run `ragline ingest PATH` first")
    store.ensure_collection(collection_for(embedder, collection))
    return retrieval.search(question, k, filters, embedder, store, collection, options or RetrievalOptions())


def load_answer_models(settings: RaglineSettings, with_generator: bool = True) -> None:
    """Load the configured embedder (and generator) now; later get_embedder / get_generator calls
    in this process return the same loaded objects."""
    from ragline import backends
    from ragline.embedders import get_embedder
    from ragline.generators import get_generator

    get_embedder(backends.embedder_spec(settings)).warm_up()
    if with_generator:
        get_generator(backends.generator_spec(settings)).warm_up()


def answer_mode(settings: RaglineSettings) -> str:
    """answer.mode with `auto` decided: extractive for a catalog model under 1B parameters."""
    mode = settings.answer.mode
    if mode != "auto":
        return mode
    model = settings.generation.model
    sizes = [m.params_b for m in load_catalog() if m.purpose == "instruct" and model in (m.model_ref, m.hub_id)]
    return "extractive" if sizes and min(sizes) < SMALL_MODEL_PARAMS_B else "generate"


def answer_question(
    question: str,
    hits: list[Hit],
    settings: RaglineSettings,
    embedder: Embedder,
    generator: Callable[[], Generator],
    on_token: TokenHook | None = None,
    pair_scorer: PairScorer | None = None,
) -> Answer:
    """The checked answer in the configured mode; `generator` is called only when one is needed."""
    started = time.perf_counter()
    mode = answer_mode(settings)
    if not hits:
        return Answer(answer=NO_PASSAGES, citations=[], timings={}, mode=mode)
    cache = EmbeddingCache(embedder)  # one per answer: each sentence is embedded once
    passages = citations_from_hits(hits)
    if mode == "extractive":
        answer = extractive_answer(question, passages, cache, settings.answer.extractive_sentences)
        answer.timings = {"answer_s": seconds_since(started)}
        answer.mode = mode
        return answer
    answer = generate_grounded(question, hits, generator(), settings, embedder, on_token, pair_scorer, cache)
    answer.mode = mode
    if settings.answer.fallback_extractive and not any(s.supported for s in answer.sentences):
        # Nothing the model wrote is backed by the passages: quote them instead of guessing.
        fallback = extractive_answer(question, passages, cache, settings.answer.extractive_sentences)
        timings = answer.timings
        answer = fallback.model_copy(update={"mode": "extractive-fallback", "prompt_tokens": answer.prompt_tokens})
        answer.timings = timings
    return answer


def generate_grounded(
    question: str,
    hits: list[Hit],
    generator: Generator,
    settings: RaglineSettings,
    embedder: Embedder,
    on_token: TokenHook | None = None,
    pair_scorer: PairScorer | None = None,
    cache: EmbeddingCache | None = None,
) -> Answer:
    """Grounded generation: the passages' best sentences within the context budget, fenced; the
    answer streamed, then its citations parsed and each sentence checked against what it cites."""
    g = settings.generation
    started = time.perf_counter()
    cache = cache or EmbeddingCache(embedder)
    budget = min(g.context_tokens, generator.context_window - g.max_tokens - 256)
    retrieved = citations_from_hits(hits)
    windows = context_windows(question, retrieved, cache, generator.count_tokens, budget)
    passages = renumbered(retrieved, [c for c, _ in windows])
    windows = [(passages[i], text) for i, (_, text) in enumerate(windows)]
    messages = build_grounded_messages(question, windows)
    prompt_tokens = generator.count_tokens("".join(m["content"] for m in messages))
    text, first_token_s = stream_text(generator, messages, g.max_tokens, g.temperature, on_token)
    generated = seconds_since(started)
    scorer = SupportScorer(embedder, question, pair_scorer, cache)
    a = settings.answer
    shown = set(range(1, len(windows) + 1))  # renumbered() puts the prompt's passages first
    answer = ground(text, passages, scorer, GroundingOptions(a.support_threshold, a.strict), citable=shown)
    answer.prompt_tokens = prompt_tokens
    answer.timings = {
        "first_token_s": first_token_s,
        "generate_s": generated,
        "check_s": round(seconds_since(started) - generated, 3),
    }
    return answer


def renumbered(citations: list[Citation], in_prompt: list[Citation]) -> list[Citation]:
    """The passages in the prompt numbered 1..m (in retrieval order), the rest m+1.. after them."""
    ids = {c.chunk_id for c in in_prompt}
    ordered = [c for c in citations if c.chunk_id in ids] + [c for c in citations if c.chunk_id not in ids]
    return [c.model_copy(update={"n": n}) for n, c in enumerate(ordered, start=1)]


def stream_text(
    generator: Generator,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float,
    on_token: TokenHook | None,
) -> tuple[str, float]:
    """The generated text and the seconds to its first token; each token goes to the hooks as it arrives."""
    started = time.perf_counter()
    first_token_s = 0.0
    parts: list[str] = []
    for token in generator.stream(messages, max_tokens, temperature):
        if not parts:
            first_token_s = seconds_since(started)
        parts.append(token)
        for hook in (on_token, _token_hook):
            if hook is not None:
                hook(token)
    return "".join(parts).strip(), first_token_s


def generate_answer(question: str, hits: list[Hit], generator: Generator, settings: RaglineSettings) -> Answer:
    """The earlier answer path, unchecked: whole chunks in the prompt, every one returned as a
    citation. `ragline models bench` scores generators with it (given the gold passage), and
    `benchmarks/answers.py` measures it as the baseline."""
    g = settings.generation
    started = time.perf_counter()
    citations = citations_from_hits(hits)
    budget = generator.context_window - g.max_tokens - 16
    messages, used = build_messages(question, citations, generator.count_tokens, budget)
    prompt_tokens = generator.count_tokens("".join(m["content"] for m in messages))
    text, first_token_s = stream_text(generator, messages, g.max_tokens, g.temperature, None)
    answer = Answer(
        answer=text, citations=used, timings={"first_token_s": first_token_s, "generate_s": seconds_since(started)}
    )
    answer.prompt_tokens = prompt_tokens
    answer.mode = "whole-chunks"
    return answer
