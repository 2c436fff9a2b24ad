"""Plain data records passed between ragline's steps (no Prefect, no heavy imports)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from pydantic import BaseModel

# "kept": a document the sync would have deleted but kept (ragline.ingestion.plan, deletion guard).
FileStatus = Literal["ingested", "unchanged", "skipped", "failed", "deleted", "kept"]


@dataclass(frozen=True)
class SourceFile:
    """A file found under the ingest root. `source` is the root-relative POSIX path."""

    path: str
    source: str
    size: int
    sha256: str
    file_type: str
    # The stat fields that identify this version of the file, and when its hash was taken: a
    # later run trusts the recorded hash while they match (see ragline.ingestion.discovery.reusable_hash).
    fingerprint: str = ""
    hashed_ns: int = 0
    # The ingest root (display form) the source is relative to: part of the chunk ids, so two
    # roots in one collection never share a point.
    root: str = ""


@dataclass
class Chunk:
    # Every string is valid UTF-8 (the stores write the payload as it is): the chunker cleans text
    # and title (ragline.parsing.chunking.valid_utf8), source is a display form (discovery.display_path).
    chunk_id: str
    source: str
    doc_hash: str
    chunk_index: int
    text: str
    file_type: str
    page: int | None = None
    category: str | None = None
    title: str | None = None

    def payload(self) -> dict[str, Any]:
        return dict(vars(self))  # flat fields: a shallow copy (asdict's deep copy costs ~40x, per chunk)


@dataclass
class FileReport:
    source: str
    status: FileStatus
    chunks: int = 0
    reason: str | None = None
    seconds: float = 0.0


@dataclass
class ParsedBatch:
    chunks: list[Chunk] = field(default_factory=list)
    reports: list[FileReport] = field(default_factory=list)
    # Sources whose failure was the moment's (vanished, unreadable), not their content's.
    transient_failures: list[str] = field(default_factory=list)


@dataclass
class Hit:
    chunk_id: str
    score: float
    payload: dict[str, Any]


def citation_label(source: str, page: int | None) -> str:
    """Where a passage is from, as answers show it: "report.pdf, page 3" (no page: the source)."""
    return f"{source}, page {page}" if page else source


class Citation(BaseModel):
    n: int
    source: str
    page: int | None
    chunk_id: str
    score: float
    text: str

    @property
    def label(self) -> str:
        return citation_label(self.source, self.page)


class AnswerSentence(BaseModel):
    """One sentence of an answer, the passages it cites (their `n`), and whether they support it."""

    text: str
    citations: list[int] = []
    supported: bool = True
    # How well the best cited passage backs the sentence (0..1, ragline.grounding.support_score).
    support: float = 1.0


class Answer(BaseModel):
    """`citations`: the passages the answer cites; `context`: retrieved passages it does not cite.

    `invalid_citations`: numbers the generator wrote that name no passage (removed from `answer`).
    """

    answer: str
    citations: list[Citation]
    timings: dict[str, float]
    mode: str = "generate"
    sentences: list[AnswerSentence] = []
    context: list[Citation] = []
    invalid_citations: list[int] = []
    # Tokens of the generation prompt (None: no generation, e.g. an extractive answer).
    prompt_tokens: int | None = None


@dataclass
class DocumentRecord:
    """One document in the manifest.

    `live_hash`/`chunks`: the version whose chunks queries see (None: no chunks are live, e.g. an
    empty document, or a new one whose first parse failed). `seen_hash`, `fingerprint`,
    `hashed_ns`: the file's content hash when the last run looked at it, and the stat fingerprint
    it had then (lets the next run skip hashing). `failed_reason`: why `seen_hash` could not be
    parsed; that version is not retried until the file changes (or `--reembed`), and the chunks
    of `live_hash` stay live meanwhile.
    """

    source: str
    live_hash: str | None = None
    chunks: int = 0
    seen_hash: str = ""
    fingerprint: str = ""
    hashed_ns: int = 0
    failed_reason: str | None = None
    # The parsing/chunking settings the chunks were made with (ragline.parsing.options.ParseOptions.signature).
    signature: str = ""

    def payload(self, root: str) -> dict:
        return {**asdict(self), "root": root}

    @classmethod
    def from_payload(cls, payload: dict) -> DocumentRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in payload.items() if key in names})
