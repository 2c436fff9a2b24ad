"""Cited means cited: parse an answer's [n] markers, check each sentence against what it cites.

A generated answer is split into sentences; each keeps the passage numbers it cites. Numbers that
name no passage are dropped (and reported). Each sentence is then scored against its cited
passages (ragline.support); a sentence that cites nothing, or cites a passage that does not back
it, is re-attached to the passage that does when one does ("repaired"), else marked unsupported.
The answer's `citations` are the passages its sentences cite; the other retrieved ones are
`context`. Document text never reaches this parser as a citation: passages are fenced and their
own "[n]" markers neutralized before they enter a prompt or an extractive answer (`neutralize`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragline.parsing.sentences import split_sentences
from ragline.records import Answer, AnswerSentence, Citation
from ragline.support import SupportScorer

# "[1]", "[1, 2]", "[1][2]" (each bracket matched on its own), "[ 3 ]".
CITATION_MARK = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
LEADING_MARKS = re.compile(r"^(?:\s*\[\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*\])+")
FENCE_TAG = re.compile(r"</?\s*passage", re.IGNORECASE)
# A fence tag the model echoed, whole, or cut off by max_tokens at the end of the text.
FENCE_LINE = re.compile(r"</?\s*passage\b[^>]*>|</?\s*(?:p|pa|pas|pass|passa|passag|passage)\b[^>]*$", re.IGNORECASE)


def neutralize(text: str) -> str:
    """Document text as it may appear in a prompt or an answer: its "[n]" markers become "(n)"
    and passage fence tags are broken, so a document cannot pose as a citation or a new passage."""
    text = CITATION_MARK.sub(lambda m: f"({m.group(1)})", text)
    return FENCE_TAG.sub(lambda m: m.group(0).replace("<", "‹"), text)


def cited_numbers(text: str) -> list[int]:
    """Every passage number the text cites, in order of first appearance."""
    numbers: list[int] = []
    for match in CITATION_MARK.finditer(text):
        for part in re.split(r"[,;]", match.group(1)):
            n = int(part)
            if n not in numbers:
                numbers.append(n)
    return numbers


def strip_marks(text: str) -> str:
    text = CITATION_MARK.sub("", text)
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))


def answer_sentences(text: str) -> list[tuple[str, list[int]]]:
    """(sentence without markers, numbers it cites). A marker that opens a sentence ("... end. [2]
    Next") belongs to the sentence before it."""
    pieces: list[tuple[str, list[int]]] = []
    text = FENCE_LINE.sub(" ", text)  # a small model may echo the prompt's fence tags
    for sentence in split_sentences(" ".join(text.split())):
        leading = LEADING_MARKS.match(sentence)
        if leading and pieces:
            pieces[-1][1].extend(n for n in cited_numbers(leading.group(0)) if n not in pieces[-1][1])
            sentence = sentence[leading.end() :]
        body = strip_marks(sentence)
        if body:
            pieces.append((body, cited_numbers(sentence)))
        elif pieces:
            pieces[-1][1].extend(n for n in cited_numbers(sentence) if n not in pieces[-1][1])
    return pieces


@dataclass
class GroundingOptions:
    threshold: float = 0.5
    strict: bool = False


def ground(
    text: str,
    passages: list[Citation],
    scorer: SupportScorer,
    options: GroundingOptions | None = None,
    citable: set[int] | None = None,
) -> Answer:
    """The answer with its sentences checked, citations repaired, and citations/context split.

    `citable`: the numbers the model was shown (default: every passage). A number outside it is
    invalid even when a retrieved passage that was left out of the prompt carries it; such passages
    can still back a sentence through repair."""
    options = options or GroundingOptions()
    by_n = {c.n: c for c in passages}
    shown = set(by_n) if citable is None else citable & set(by_n)
    invalid: list[int] = []
    sentences: list[AnswerSentence] = []
    for body, numbers in answer_sentences(text):
        invalid.extend(n for n in numbers if n not in shown and n not in invalid)
        sentences.append(check_sentence(body, [n for n in numbers if n in shown], by_n, scorer, options.threshold))
    answer = assemble(sentences, passages, invalid)
    return without_unsupported(answer) if options.strict else answer


def check_sentence(
    body: str, numbers: list[int], by_n: dict[int, Citation], scorer: SupportScorer, threshold: float
) -> AnswerSentence:
    cited_scores = {n: scorer.score(body, by_n[n].text) for n in numbers}
    best_cited = max(cited_scores.values(), default=0.0)
    if best_cited >= threshold:
        backing = [n for n, s in cited_scores.items() if s >= threshold]
        return AnswerSentence(text=body, citations=backing, supported=True, support=round(best_cited, 3))
    # Nothing it cites backs it: the passage that does (a repaired citation), if any.
    others = {n: scorer.score(body, c.text) for n, c in by_n.items() if n not in cited_scores}
    n_best, best_other = max(others.items(), key=lambda item: item[1], default=(None, 0.0))
    if n_best is not None and best_other >= threshold:
        return AnswerSentence(text=body, citations=[n_best], supported=True, support=round(best_other, 3))
    support = round(max(best_cited, best_other), 3)
    return AnswerSentence(text=body, citations=numbers, supported=False, support=support)


def assemble(sentences: list[AnswerSentence], passages: list[Citation], invalid: list[int]) -> Answer:
    """The Answer record: text with one marker group per sentence, citations = the cited passages."""
    cited = {n for s in sentences for n in s.citations}
    return Answer(
        answer=render_text(sentences),
        citations=[c for c in passages if c.n in cited],
        context=[c for c in passages if c.n not in cited],
        sentences=sentences,
        invalid_citations=invalid,
        timings={},
    )


def render_text(sentences: list[AnswerSentence]) -> str:
    return " ".join(render_sentence(s.text, s.citations) for s in sentences)


def render_sentence(text: str, citations: list[int]) -> str:
    """The sentence with its markers before the closing punctuation: "Paris is the capital [1]."."""
    marks = "".join(f"[{n}]" for n in citations)
    body, end = (text[:-1], text[-1]) if text[-1:] in ".!?" else (text, "")
    return f"{body} {marks}{end}" if marks else text


def marked_sentences(answer: Answer) -> list[tuple[str, bool]]:
    """(sentence with its citation markers, supported) for each sentence, for a view to mark the
    unsupported ones; an answer without checked sentences is one supported piece."""
    if not answer.sentences:
        return [(answer.answer, True)]
    return [(render_sentence(s.text, s.citations), s.supported) for s in answer.sentences]


def without_unsupported(answer: Answer) -> Answer:
    """The answer with its unsupported sentences left out (`--strict` applied after the fact)."""
    passages = sorted(answer.citations + answer.context, key=lambda c: c.n)
    kept = assemble([s for s in answer.sentences if s.supported], passages, answer.invalid_citations)
    return answer.model_copy(update={k: getattr(kept, k) for k in ("answer", "citations", "context", "sentences")})
