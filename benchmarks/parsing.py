"""Parse cost per document with each sentence splitter, and what the choice changes.

    .venv/bin/python benchmarks/parsing.py                    # 300 SQuAD passages as .txt files
    .venv/bin/python benchmarks/parsing.py --folder ../shared/data/docs

unstructured counts sentences in every paragraph to tell titles from narrative text. With
`ingest.sentence_splitter = "spacy"` that is a spaCy tagger pass per paragraph; with "rules"
(the default, ragline/parsing/sentences.py) it is punctuation rules. Both partition the same files in
this process, alternating, after a warm-up; the report gives ms per file, the ratio, and how many
elements and chunks differ between the two. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

sys.path.insert(0, str(common.REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SPLITTERS = ("spacy", "rules")


def parse_all(files, splitter: str) -> tuple[float, dict]:
    from ragline.parsing.chunking import chunk_elements
    from ragline.parsing.partition import ParseError, partition_file

    outputs = {}
    started = time.perf_counter()
    for source_file in files:
        try:
            elements = partition_file(source_file.path, sentence_splitter=splitter)
        except ParseError:
            continue
        chunks = chunk_elements(elements, source_file, 1000, 800, 100, 200)
        outputs[source_file.source] = ([(e.category, e.text) for e in elements], [c.text for c in chunks])
    return time.perf_counter() - started, outputs


def compare(files) -> dict:
    from ragline.parsing.partition import partition_file

    for splitter in SPLITTERS:  # imports, model loads and lazy partitioner imports stay out of the timing
        partition_file(files[0].path, sentence_splitter=splitter)
    seconds, outputs = {}, {}
    for splitter in SPLITTERS:
        seconds[splitter], outputs[splitter] = parse_all(files, splitter)
    spacy, rules = outputs["spacy"], outputs["rules"]
    elements = sum(len(spacy[s][0]) for s in spacy)
    changed = sum(a != b for s in spacy for a, b in zip(spacy[s][0], rules.get(s, ([], []))[0], strict=False))
    return {
        "files": len(files),
        "ms_per_file": {s: round(1000 * seconds[s] / len(files), 2) for s in SPLITTERS},
        "rules_vs_spacy_time": round(seconds["rules"] / seconds["spacy"], 3),
        "elements": elements,
        "elements_with_another_category": changed,
        "files_with_other_chunks": sum(spacy[s][1] != rules.get(s, ([], []))[1] for s in spacy),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", help="documents to parse (default: SQuAD passages as .txt files)")
    parser.add_argument("--docs", type=int, default=300, help="SQuAD passages when no --folder is given")
    args = parser.parse_args(argv)

    from ragline.ingestion.discovery import discover

    with tempfile.TemporaryDirectory(prefix="ragline-parsing-") as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp)
        if not args.folder:
            common.build_squad_corpus(folder, args.docs)
        files = [f for f in discover(str(folder), ["**/*"], ["**/.*", "**/*.manifest.json"], 64).files]
        result = {
            "folder": str(args.folder or f"{args.docs} SQuAD passages"),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "commit": common.git_commit(),
            "machine": common.machine(),
            **compare(files),
        }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
