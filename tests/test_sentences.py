"""The rule-based sentence splitter, and what it changes in partitioning (nothing a chunk shows)."""

from __future__ import annotations

import pytest

from ragline.parsing.sentences import split_sentences
from tests.conftest import SHARED_DOCS, needs_shared_data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One sentence only", ["One sentence only"]),
        ("It rained. Then it stopped!", ["It rained.", "Then it stopped!"]),
        ("Mr. Smith lives in the U.S. now. He likes it.", ["Mr. Smith lives in the U.S. now.", "He likes it."]),
        ("J. R. R. Tolkien wrote it. In 1954 it sold.", ["J. R. R. Tolkien wrote it.", "In 1954 it sold."]),
        ('Is it? "Yes," he said. (Really.) Then 3 more.', ["Is it?", '"Yes," he said.', "(Really.)", "Then 3 more."]),
        ("Version 2.5 is out. see the notes", ["Version 2.5 is out. see the notes"]),  # no capital: same sentence
        ("", []),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_titles_and_narrative_text_are_told_apart_with_rules(tmp_path):
    from ragline.parsing.partition import partition_file

    doc = tmp_path / "notes.txt"
    doc.write_text(
        "Quarterly Results\n\n"
        "Revenue grew by ten percent. Costs fell because the new plant opened in March.\n\n"
        "Outlook\n\n"
        "We expect growth to continue. The board approved the plan.\n"
    )
    elements = partition_file(str(doc), sentence_splitter="rules")
    assert [(e.category, e.text[:20]) for e in elements] == [
        ("Title", "Quarterly Results"),
        ("NarrativeText", "Revenue grew by ten "),
        ("Title", "Outlook"),
        ("NarrativeText", "We expect growth to "),
    ]


@needs_shared_data(SHARED_DOCS)
@pytest.mark.parametrize("name", ["example-10k.html", "winter-sports.epub", "README.rst"])
def test_rules_give_the_same_chunks_as_spacy_on_real_documents(name, tmp_path):
    """The splitter only moves a few elements between NarrativeText and UncategorizedText (27 of
    7,340 across ../shared/data/docs); chunk boundaries follow titles, so chunks stay the same."""
    from ragline.ingestion.discovery import discover
    from ragline.parsing.chunking import chunk_elements
    from ragline.parsing.partition import partition_file

    (source_file,) = [f for f in discover(str(SHARED_DOCS), [name], [], 64).files]
    chunk_texts = {}
    for splitter in ("spacy", "rules"):
        elements = partition_file(source_file.path, sentence_splitter=splitter)
        chunks = chunk_elements(elements, source_file, 1000, 800, 100, 200)
        chunk_texts[splitter] = [chunk.text for chunk in chunks]
    assert chunk_texts["rules"] == chunk_texts["spacy"]
    assert len(chunk_texts["rules"]) >= 2


def _chunks_of(tmp_path, text: str) -> list[str]:
    from ragline.ingestion.discovery import discover
    from ragline.parsing.chunking import chunk_elements
    from ragline.parsing.partition import partition_file

    (tmp_path / "doc.txt").write_text(text)
    (source_file,) = discover(str(tmp_path), ["doc.txt"], [], 64).files
    return [chunk.text for chunk in chunk_elements(partition_file(source_file.path), source_file, 1000, 800, 100, 200)]


def test_a_heading_before_a_long_paragraph_leads_its_first_chunk_instead_of_standing_alone(tmp_path):
    paragraph = " ".join(f"Sentence number {i} says something about prime numbers." for i in range(30))
    chunks = _chunks_of(tmp_path, f"Prime number\n\n{paragraph}\n")
    assert len(chunks) == 2
    assert chunks[0].startswith("Prime number\n\nSentence number 0")
    assert all(len(chunk) > 200 for chunk in chunks)  # no chunk is the bare heading


def test_a_trailing_heading_and_a_heading_only_document_keep_their_text(tmp_path):
    assert _chunks_of(tmp_path, "Annual Report\n") == ["Annual Report"]
    chunks = _chunks_of(tmp_path, "Revenue grew by ten percent. Costs fell in March.\n\nAppendix\n")
    assert "Appendix" in " ".join(chunks)
