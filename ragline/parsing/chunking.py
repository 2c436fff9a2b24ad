"""Turn partitioned elements into chunks with deterministic ids and the payload queries cite."""

from __future__ import annotations

import hashlib
import uuid

from ragline.records import Chunk, SourceFile

# Fixed namespace: the same document, chunk index and text always give the same point id.
CHUNK_NAMESPACE = uuid.UUID("5b1c63a0-5a0e-4b7f-9c39-7f2f0c1e9a11")


def chunk_id_for(source: str, chunk_index: int, text: str, root: str = "") -> str:
    """A stable point id; the ingest root is part of it, so that `a.txt` of two roots in one
    collection are two points (ids of root-less chunks, e.g. evaluation corpora, are unchanged)."""
    text_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    key = f"{source}\x00{chunk_index}\x00{text_hash}"
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{root}\x00{key}" if root else key))


def chunk_elements(
    elements: list,
    source_file: SourceFile,
    max_characters: int,
    new_after_n_chars: int,
    overlap: int,
    combine_text_under_n_chars: int,
) -> list[Chunk]:
    """Chunk with unstructured's `chunk_by_title`; each chunk remembers its section title."""
    from unstructured.chunking.title import chunk_by_title

    text_elements = [element for element in elements if (element.text or "").strip()]
    if not text_elements:
        return []
    pieces = chunk_by_title(
        text_elements,
        max_characters=max_characters,
        new_after_n_chars=min(new_after_n_chars, max_characters),
        overlap=overlap,
        combine_text_under_n_chars=min(combine_text_under_n_chars, max_characters),
        multipage_sections=True,
    )
    chunks: list[Chunk] = []
    section_title: str | None = None
    heading = ""  # a heading chunk_by_title left on its own, carried into the next chunk
    for number, piece in enumerate(pieces):
        text = piece.text.strip()
        if not text:
            continue
        section_title = _section_title(piece) or section_title
        last = number == len(pieces) - 1
        if _only_titles(piece) and len(text) < combine_text_under_n_chars and not last:
            heading = f"{heading}\n\n{text}".strip()
            continue
        if heading:
            text, heading = f"{heading}\n\n{text}", ""
        chunks.append(_chunk(source_file, len(chunks), text, piece, section_title))
    return chunks


def valid_utf8(text: str | None) -> str | None:
    """`text` without lone surrogates (a parser can decode bytes into them): stores, tokenizers
    and JSON all need valid UTF-8."""
    if text is None:
        return None
    return text.encode("utf-8", "replace").decode("utf-8")


def _chunk(source_file: SourceFile, index: int, text: str, piece, section_title: str | None) -> Chunk:
    text, section_title = valid_utf8(text), valid_utf8(section_title)
    return Chunk(
        chunk_id=chunk_id_for(source_file.source, index, text, source_file.root),
        source=source_file.source,
        doc_hash=source_file.sha256,
        chunk_index=index,
        text=text,
        file_type=source_file.file_type,
        page=getattr(piece.metadata, "page_number", None),
        category=piece.category,
        title=section_title,
    )


def _only_titles(piece) -> bool:
    """A piece made of headings only: chunk_by_title leaves a section's title alone when the text
    after it is too long to join it (it is split on its own). Alone, the heading is a useless
    search hit and one more text to embed; in front of its text it gives that text context."""
    elements = getattr(piece.metadata, "orig_elements", None) or []
    return bool(elements) and all(element.category == "Title" for element in elements)


def _section_title(piece) -> str | None:
    for element in getattr(piece.metadata, "orig_elements", None) or []:
        if element.category == "Title" and element.text.strip():
            return element.text.strip()[:200]
    return None
