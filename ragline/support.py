"""How well a passage backs a sentence, and how well a sentence answers a question.

Two signals, both cheap on a CPU: the loaded embedder's cosine similarity (meaning) and lexical
overlap (the sentence's content words found in the passage). A cross-encoder, when one is
configured (`answer.support_model`), adds a third. One more rule catches the typical small-model
error the two averages miss: a number or a capitalized name that appears in neither the passage
nor the question is something the model made up ("VecS", "1997"), and halves the score.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable

import numpy as np

from ragline.embedders import Embedder
from ragline.parsing.sentences import split_sentences

STOPWORDS = frozenset(
    "a an the and or but if then else of in on at to for from by with without about into over under "
    "as is are was were be been being am do does did done have has had having it its it's this that "
    "these those there here what which who whom whose when where why how not no nor so than too very "
    "can could will would shall should may might must i you he she we they me him her us them my your "
    "his our their also just only any all each some such more most other same own up down out off "
    "again further once both few s t d ll m o re ve y".split()
)
WORD = re.compile(r"[A-Za-z0-9]+(?:[.'\-/_][A-Za-z0-9]+)*")
# The longest "sentence" considered: text without punctuation (tables, lists) is cut in windows.
MAX_SENTENCE_CHARS = 400

# (sentence, passage) pairs -> scores, higher is better (a CrossEncoder's predict).
PairScorer = Callable[[list[tuple[str, str]]], list[float]]


def stem(word: str) -> str:
    word = word.lower()
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_terms(text: str) -> list[str]:
    return [stem(w) for w in WORD.findall(text) if w.lower() not in STOPWORDS]


def coverage(terms: list[str], known: set[str]) -> float:
    """The fraction of `terms` (each counted once) found in `known`."""
    unique = set(terms)
    return len(unique & known) / len(unique) if unique else 0.0


def invented_tokens(sentence: str, known: set[str]) -> list[str]:
    """Numbers and mid-sentence capitalized words of `sentence` absent from `known` (stemmed terms)."""
    words = WORD.findall(sentence)
    suspicious = [w for i, w in enumerate(words) if any(ch.isdigit() for ch in w) or (i > 0 and w[0].isupper())]
    return [w for w in suspicious if w.lower() not in STOPWORDS and stem(w) not in known]


def is_heading(line: str, before: str, after: str) -> bool:
    """A short unpunctuated line between a sentence end (or the start) and a capitalized line:
    a title that the chunker kept above its paragraph ("Vector store" + "By default ...")."""
    words = line.split()
    return (
        0 < len(words) <= 8
        and (line[0].isupper() or line[0].isdigit())
        and not line.endswith((".", "!", "?", ":", ";", ","))
        and (not before or before.endswith((".", "!", "?", ":")))
        and after[:1].isupper()
    )


def without_headings(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [
        line
        for i, line in enumerate(lines)
        if not is_heading(line, lines[i - 1] if i else "", lines[i + 1] if i + 1 < len(lines) else "")
    ]
    return " ".join(kept)


def passage_sentences(text: str) -> list[str]:
    """The sentences of a passage without its title lines, long unpunctuated runs cut into windows."""
    pieces: list[str] = []
    for sentence in split_sentences(without_headings(text)):
        while len(sentence) > MAX_SENTENCE_CHARS:
            cut = sentence.rfind(" ", 0, MAX_SENTENCE_CHARS)
            cut = cut if cut > 0 else MAX_SENTENCE_CHARS
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


class EmbeddingCache:
    """Unit vectors of texts from the embedder, each text embedded once (batched on request)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}

    def prime(self, texts: list[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if not missing:
            return
        matrix = np.asarray(self.embedder.embed_documents(missing), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        for text, vector in zip(missing, matrix / np.maximum(norms, 1e-12), strict=True):
            self.vectors[text] = vector

    def matrix(self, texts: list[str]) -> np.ndarray:
        self.prime(texts)
        return np.stack([self.vectors[t] for t in texts])


class SupportScorer:
    """score(sentence, passage) in 0..1: how well the passage backs the sentence."""

    def __init__(
        self,
        embedder: Embedder,
        question: str = "",
        pair_scorer: PairScorer | None = None,
        cache: EmbeddingCache | None = None,
    ):
        # The answer's one cache: sentences embedded to build the prompt are not embedded again.
        self.cache = cache or EmbeddingCache(embedder)
        self.question_terms = set(content_terms(question))
        self.pair_scorer = pair_scorer
        # Every answer sentence is scored against the same few passages: each is split once.
        self._passages: dict[str, tuple[set[str], list[str]]] = {}

    def _passage(self, passage: str) -> tuple[set[str], list[str]]:
        """The passage's content terms and its sentence windows, computed once per scorer (answer)."""
        if passage not in self._passages:
            self._passages[passage] = (set(content_terms(passage)), passage_sentences(passage) or [passage])
        return self._passages[passage]

    def score(self, sentence: str, passage: str) -> float:
        known, windows = self._passage(passage)
        lexical = coverage(content_terms(sentence), known | self.question_terms)
        similarities = self.cache.matrix(windows) @ self.cache.matrix([sentence])[0]
        semantic = max(0.0, float(similarities.max()))
        signals = [lexical, semantic]
        if self.pair_scorer is not None:
            signals.append(1 / (1 + math.exp(-self.pair_scorer([(sentence, passage)])[0])))
        score = sum(signals) / len(signals)
        if invented_tokens(sentence, known | self.question_terms):
            score /= 2
        return score


def relevance(question: str, sentences: list[str], cache: EmbeddingCache) -> list[float]:
    """How well each sentence answers the question: cosine similarity plus the share of the
    question's content words the sentence holds (a factoid's sentence repeats the question's terms)."""
    if not sentences:
        return []
    question_terms = content_terms(question)
    similarities = cache.matrix(sentences) @ cache.matrix([question])[0]
    return [
        float(sim) + 0.5 * coverage(question_terms, set(content_terms(sentence)))
        for sim, sentence in zip(similarities, sentences, strict=True)
    ]


@functools.lru_cache(maxsize=2)
def cross_encoder_scorer(model_ref: str) -> PairScorer:
    """A CrossEncoder's (sentence, passage) scores, loaded once per process (answer.support_model)."""
    from ragline.retrieval import load_reranker

    model = load_reranker(model_ref).model
    return lambda pairs: [float(score) for score in model.predict(pairs)]
