"""A rule-based sentence splitter for unstructured's element heuristics.

unstructured decides Title vs NarrativeText by counting sentences in every paragraph; with its
default spaCy pipeline that costs a neural tagger pass per paragraph, about 70% of the time to
partition a plain-text file and half the time to embed it on a 2-core CPU (BENCHMARKS.md). The
count only has to tell one sentence from several, which punctuation rules do well, so ragline
splits with these rules by default (`ingest.sentence_splitter = "rules"`) and keeps spaCy for the
part-of-speech check unstructured runs on short, single-sentence texts.
"""

from __future__ import annotations

import functools
import re

# Words that end in a period without ending a sentence (compared lower-case, without the dot).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al inc ltd co corp dept est approx fig figs "
    "no nos vol vols ed eds p pp ch sec art gen gov sen rep rev capt col lt sgt jan feb mar apr jun "
    "jul aug sep sept oct nov dec u.s u.k u.n a.m p.m ph.d b.c a.d".split()
)

# Sentence-ending punctuation, optional closing quotes/brackets, whitespace, then something that
# can start a sentence (a capital, a digit, or an opening quote/bracket).
BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
WORD_BEFORE = re.compile(r"(\S+?)[.!?]+[\"'”’)\]]*$")


@functools.lru_cache(maxsize=4096)
def _split(text: str) -> tuple[str, ...]:
    sentences = []
    start = 0
    for match in BOUNDARY.finditer(text):
        if _ends_in_abbreviation(text[start : match.end()].rstrip()):
            continue
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return tuple(sentences)


def _ends_in_abbreviation(candidate: str) -> bool:
    if not candidate.endswith("."):
        return False  # "!" and "?" always end a sentence
    match = WORD_BEFORE.search(candidate)
    if match is None:
        return False
    word = match.group(1).lstrip("\"'“‘([").lower()
    # A single letter is an initial ("J. R. R. Tolkien"), not a sentence end.
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` (same contract as unstructured.nlp.tokenize.sent_tokenize)."""
    return list(_split(str(text)))
