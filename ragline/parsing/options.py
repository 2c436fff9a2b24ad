"""What the parser pool sends to its worker processes and gets back (both sides import this)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from ragline.records import Chunk, FileReport

LIMIT_FIELDS = ("memory_mb", "max_unzipped_mb")


@dataclass(frozen=True)
class ParseOptions:
    strategy: str = "fast"
    spacy_model: str = "en_core_web_sm"
    sentence_splitter: str = "rules"
    max_characters: int = 1000
    new_after_n_chars: int = 800
    overlap: int = 100
    combine_text_under_n_chars: int = 200
    # Limits of a parser process (ragline/parsing/worker.py): they decide whether a file parses,
    # not what its chunks are, so they are not part of the signature.
    memory_mb: int = 0
    max_unzipped_mb: float = 512.0

    def signature(self) -> str:
        """A short hash of the settings that shape chunks; a document made with another is stale.

        The sentence splitter and spaCy model only steer unstructured's title heuristics but
        still change the chunks, so they count."""
        shaping = {k: v for k, v in asdict(self).items() if k not in LIMIT_FIELDS}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class ParseOutcome:
    """A parsed file: its chunks, its report row, and whether a failure belongs to its content
    (not retried until the file changes) or to the moment (file vanished, unreadable: retried)."""

    report: FileReport
    chunks: list[Chunk] = field(default_factory=list)
    content_failure: bool = False
