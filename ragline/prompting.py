"""Build the numbered-context prompt and the citations that go with it."""

from __future__ import annotations

from collections.abc import Callable

from ragline.records import Citation, Hit

SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages. "
    "Cite the passages you use as [1], [2], ... "
    "If the context does not contain the answer, say that you do not know."
)


def citations_from_hits(hits: list[Hit]) -> list[Citation]:
    return [
        Citation(
            n=n,
            source=hit.payload.get("source", ""),
            page=hit.payload.get("page"),
            chunk_id=hit.chunk_id,
            score=round(hit.score, 6),
            text=hit.payload.get("text", ""),
        )
        for n, hit in enumerate(hits, start=1)
    ]


def build_messages(
    question: str,
    citations: list[Citation],
    count_tokens: Callable[[str], int],
    token_budget: int,
) -> tuple[list[dict[str, str]], list[Citation]]:
    """Numbered passages, best first, as many as fit the model's context budget.

    Returns the chat messages and the citations that made it into the prompt.
    """
    header = f"Question: {question}\n\nContext:\n"
    footer = f'\nAnswer the question "{question}" using the context above, citing passages as [n].'
    budget = token_budget - count_tokens(SYSTEM_PROMPT + header + footer)
    passages: list[str] = []
    used: list[Citation] = []
    for citation in citations:
        where = citation.source + (f", page {citation.page}" if citation.page else "")
        passage = f"[{citation.n}] ({where}) {citation.text}\n"
        cost = count_tokens(passage)
        if cost > budget:
            if used:
                break
            passage = passage[: max(200, len(passage) * budget // max(cost, 1))] + "\n"
            cost = count_tokens(passage)
        passages.append(passage)
        used.append(citation)
        budget -= cost
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": header + "".join(passages) + footer},
    ]
    return messages, used
