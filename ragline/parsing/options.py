"""What the parser pool sends to its worker processes and gets back (both sides import this)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ragline.records import Chunk, FileReport


@dataclass(frozen=True)
class ParseOptions:
    strategy: str = "fast"
    spacy_model: str = "en_core_web_sm"
    sentence_splitter: str = "rules"
    max_characters: int = 1000
    new_after_n_chars: int = 800
    overlap: int = 100
    combine_text_under_n_chars: int = 200


@dataclass
class ParseOutcome:
    """A parsed file: its chunks, its report row, and whether a failure belongs to its content
    (not retried until the file changes) or to the moment (file vanished, unreadable: retried)."""

    report: FileReport
    chunks: list[Chunk] = field(default_factory=list)
    content_failure: bool = False
