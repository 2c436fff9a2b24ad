"""The sentences of the retrieved passages that best answer a question.

Two uses: an extractive answer (`answer.mode = extractive`: the best sentences, verbatim, each
with its citation, no generation), and the context budget of a generated answer (the prompt
carries the best sentences of each passage up to `generation.context_tokens`, not whole chunks:
on a CPU the prompt's length is the answer's latency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ragline.grounding import assemble, neutralize
from ragline.records import Answer, AnswerSentence, Citation
from ragline.support import EmbeddingCache, passage_sentences, relevance

# Retrieval rank as a tie-breaker: the first passage's sentences get this bonus, the n-th 1/n of it.
RANK_PRIOR = 0.15
# A further sentence joins an extractive answer only when it scores this close to the best one.
KEEP_WITHIN = 0.8


@dataclass
class ScoredSentence:
    n: int  # the passage's citation number
    index: int  # the sentence's position in its passage
    text: str
    score: float


def rank_sentences(question: str, passages: list[Citation], cache: EmbeddingCache) -> list[ScoredSentence]:
    """Every sentence of the passages (neutralized: no "[n]" of their own), best answer first."""
    found = [
        (rank, c.n, index, neutralize(text))
        for rank, c in enumerate(passages)
        for index, text in enumerate(passage_sentences(c.text))
    ]
    scores = relevance(question, [text for *_, text in found], cache)
    ranked = [
        ScoredSentence(n, index, text, score + RANK_PRIOR / (rank + 1))
        for (rank, n, index, text), score in zip(found, scores, strict=True)
    ]
    return sorted(ranked, key=lambda s: s.score, reverse=True)


def extractive_answer(question: str, passages: list[Citation], cache: EmbeddingCache, max_sentences: int = 2) -> Answer:
    """The best sentences, in order of score, each citing its passage."""
    ranked = rank_sentences(question, passages, cache)
    if not ranked:
        return assemble([], passages, [])
    chosen = [s for s in ranked[:max_sentences] if s.score >= KEEP_WITHIN * ranked[0].score]
    sentences = [AnswerSentence(text=s.text, citations=[s.n], supported=True, support=1.0) for s in chosen]
    return assemble(sentences, passages, [])


def context_windows(
    question: str,
    passages: list[Citation],
    cache: EmbeddingCache,
    count_tokens: Callable[[str], int],
    token_budget: int,
) -> list[tuple[Citation, str]]:
    """(passage, its best sentences in document order) for the passages that got any, in retrieval
    order, the sentences chosen best first until `token_budget` tokens are spent."""
    chosen: dict[int, list[ScoredSentence]] = {}
    spent = 0
    for sentence in rank_sentences(question, passages, cache):
        cost = count_tokens(sentence.text) + 1
        if spent + cost > token_budget:
            if spent:
                continue  # a shorter sentence may still fit
            sentence.text = sentence.text[: max(80, len(sentence.text) * token_budget // max(cost, 1))]
            cost = token_budget
        chosen.setdefault(sentence.n, []).append(sentence)
        spent += cost
    windows = []
    for citation in passages:
        picked = sorted(chosen.get(citation.n, []), key=lambda s: s.index)
        if picked:
            windows.append((citation, join_window(picked)))
    return windows


def join_window(sentences: list[ScoredSentence]) -> str:
    """Sentences in document order; "..." marks a gap between ones that were not adjacent."""
    parts = [sentences[0].text]
    for before, sentence in zip(sentences, sentences[1:], strict=False):
        parts.append(("... " if sentence.index > before.index + 1 else "") + sentence.text)
    return " ".join(parts)
