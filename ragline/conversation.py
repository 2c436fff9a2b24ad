"""Chat conversations: the question in the last user turn, made standalone using earlier turns.

A chat client sends the whole conversation each time. Retrieval needs a question that stands on
its own: "and who founded it?" finds nothing useful, "Who founded Acme Rockets?" does. The
generator rewrites the follow-up; small models often return the question unchanged or drift, so
a rewrite is kept only when it brings in a word from the conversation that the follow-up lacked.
Otherwise a heuristic prepends the previous user question, which is what retrieval needs (the
missing names), at the cost of a longer question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragline.generators import Generator
from ragline.support import stem

REWRITE_PROMPT = (
    "Rewrite the last question so that it can be understood without the conversation. "
    "Keep its meaning and replace pronouns with the names they refer to. Reply with the question only.\n"
    "Example. Conversation: user: Tell me about the Eiffel Tower. Last question: when was it built? "
    "Standalone question: When was the Eiffel Tower built?"
)
# Words that point back into the conversation: a question without any of them is kept as it is.
REFERRING_WORDS = frozenset(
    "it its it's they them their theirs this that these those he him his she her hers there "
    "then also same former latter one ones".split()
)
LEADING_CONNECTIVES = ("and ", "but ", "so ", "also ", "what about", "how about", "and?", "why?", "how?")
# Words a rewrite may drop or bring in: the words of asking ("please tell me ..."). Not support.py's
# STOPWORDS, which also hold words that change a question's meaning (not, no, only, more, without):
# a rewrite that loses one of those asks something else and must be refused.
QUESTION_STOPWORDS = frozenset(
    "a an the and or but of to in on at for from by with about as is are was were be been do does did "
    "what who whom which when where why how i you we me my your our can could would should will shall "
    "may might must please tell say".split()
)
HISTORY_TURNS = 4  # earlier messages shown to the rewriter: enough for a referent, short to process


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant" (system messages are not part of the conversation here)
    text: str


def message_text(content) -> str:
    """OpenAI message content: a string, or a list of parts of which the text parts count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # `{"text": null}` or a non-text part (an image) adds nothing rather than failing the request
        return " ".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return ""


def split_conversation(messages: list[dict]) -> tuple[str, list[Turn]]:
    """The last user message (the question) and the user/assistant turns before it."""
    turns = [Turn(m["role"], message_text(m.get("content")).strip()) for m in messages if m.get("role")]
    last_user = max((i for i, t in enumerate(turns) if t.role == "user"), default=None)
    if last_user is None or not turns[last_user].text:
        raise ValueError("the conversation has no user message with text: send the question as the last user message")
    history = [t for t in turns[:last_user] if t.role in ("user", "assistant") and t.text]
    return turns[last_user].text, history


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9][a-z0-9'-]*", text.lower()) if w not in QUESTION_STOPWORDS and len(w) > 1}


def looks_standalone(question: str) -> bool:
    """No referring words and no leading connective: the question does not lean on earlier turns."""
    lowered = question.strip().lower()
    if lowered.startswith(LEADING_CONNECTIVES):
        return False
    return not (set(re.findall(r"[a-z']+", lowered)) & REFERRING_WORDS)


def heuristic_rewrite(question: str, history: list[Turn]) -> str:
    """The previous user question, then the follow-up: the referent's words reach retrieval."""
    previous = next((t.text for t in reversed(history) if t.role == "user"), "")
    return f"{previous} {question}".strip() if previous else question


def rewrite_messages(question: str, history: list[Turn]) -> list[dict[str, str]]:
    lines = [f"{t.role}: {' '.join(t.text.split())[:400]}" for t in history[-HISTORY_TURNS:]]
    conversation = "\n".join(lines)
    return [
        {"role": "system", "content": REWRITE_PROMPT},
        {
            "role": "user",
            "content": f"Conversation:\n{conversation}\n\nLast question: {question}\n\nStandalone question:",
        },
    ]


def stems(words: set[str]) -> set[str]:
    return {stem(w)[:5] for w in words}  # "founded" and "founder" count as the same word


def accept_rewrite(candidate: str, question: str, history: list[Turn]) -> str | None:
    """The model's rewrite (first line) if it kept the follow-up's own words and brought in a word
    from the conversation; None otherwise. Small models often echo an earlier question instead."""
    line = candidate.strip().splitlines()[0].strip().strip('"') if candidate.strip() else ""
    line = re.sub(r"^(standalone question|question)\s*:\s*", "", line, flags=re.IGNORECASE)
    if not line.endswith("?") or len(line) > 4 * len(question) + 200:
        return None  # not a question: the model answered, apologized, or rambled
    own = content_words(question) - REFERRING_WORDS
    if not stems(own) <= stems(content_words(line)):
        return None
    brought_in = content_words(line) - content_words(question)
    context = set().union(*(content_words(t.text) for t in history)) if history else set()
    return line if brought_in & context else None


def standalone_question(
    question: str, history: list[Turn], generator: Generator | None, mode: str, max_tokens: int
) -> tuple[str, str]:
    """(question to retrieve and answer with, how it was obtained: kept/model/heuristic)."""
    if mode == "off" or not history or looks_standalone(question):
        return question, "kept"
    if mode == "model" and generator is not None:
        candidate = generator.generate(rewrite_messages(question, history), max_tokens, 0.0)
        accepted = accept_rewrite(candidate, question, history)
        if accepted:
            return accepted, "model"
    return heuristic_rewrite(question, history), "heuristic"
