"""Plain data records passed between ragline's steps (no Prefect, no heavy imports)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

FileStatus = Literal["ingested", "unchanged", "skipped", "failed", "deleted"]


@dataclass(frozen=True)
class SourceFile:
    """A file found under the ingest root. `source` is the root-relative POSIX path."""

    path: str
    source: str
    size: int
    sha256: str
    file_type: str
    # The stat fields that identify this version of the file, and when its hash was taken: a
    # later run trusts the recorded hash while they match (see ragline.discovery.reusable_hash).
    fingerprint: str = ""
    hashed_ns: int = 0


@dataclass
class Chunk:
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
        return asdict(self)


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


class Citation(BaseModel):
    n: int
    source: str
    page: int | None
    chunk_id: str
    score: float
    text: str


class Answer(BaseModel):
    answer: str
    citations: list[Citation]
    timings: dict[str, float]
