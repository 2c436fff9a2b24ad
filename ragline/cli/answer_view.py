"""How `ragline ask` shows an answer: tokens live while they are generated, then the checked answer.

Document text, file names and the model's words are printed as text, never as rich markup (a
file called "[red]x.md" or an answer holding "[/]" prints as it is).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.live import Live
from rich.markup import escape
from rich.text import Text

from ragline.cli.common import out
from ragline.records import citation_label


@contextlib.contextmanager
def streamed_tokens(status, enabled: bool = True) -> Iterator[None]:
    """While the block runs, tokens the answering library generates in this process show live
    (with the time to the first one); the live view is cleared when the block ends, and the
    checked answer is printed in its place. Outside a terminal nothing is shown."""
    from ragline import answering

    text = Text(style="dim")
    live = Live(text, console=out, transient=True, refresh_per_second=10)
    started = time.perf_counter()

    def show(token: str) -> None:
        if not live.is_started:
            status.stop()
            text.append(f"(first token after {time.perf_counter() - started:.1f} s) ", style="dim italic")
            live.start()
        text.append(token)

    answering.set_token_hook(show if enabled and out.is_terminal else None)
    try:
        yield
    finally:
        answering.set_token_hook(None)
        live.stop()


def answer_text(answer: dict) -> Text:
    """The answer, unsupported sentences in red with a note."""
    from ragline.grounding import marked_sentences
    from ragline.records import Answer

    text = Text()
    for i, (sentence, supported) in enumerate(marked_sentences(Answer.model_validate(answer))):
        if i:
            text.append(" ")
        text.append(sentence, style="bold" if supported else "bold red")
        if not supported:
            text.append(" (unsupported)", style="red italic")
    return text


def print_answer(answer: dict) -> None:
    out.print(answer_text(answer))
    if answer.get("invalid_citations"):
        out.print(f"[yellow]removed citations of passages that do not exist: {answer['invalid_citations']}[/]")
    out.print()
    for c in answer["citations"]:
        where = escape(citation_label(c["source"], c["page"]))
        snippet = escape(" ".join(c["text"].split())[:160])
        out.print(f"\\[{c['n']}] {where} (score {c['score']:.3f})\n    {snippet}")
    context = answer.get("context") or []
    if context:
        names = ", ".join(escape(source) for source in dict.fromkeys(c["source"] for c in context))
        out.print(f"[dim]also retrieved, not cited: {names}[/]")
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in answer["timings"].items())
    mode = f"{answer['mode']} answer; " if answer.get("mode") else ""
    out.print(f"\n[dim]{mode}{timings}[/]")
