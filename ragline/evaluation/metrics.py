"""Retrieval evaluation on BEIR-format datasets, and the end-to-end answer check.

A BEIR dataset is a folder with corpus.jsonl ({"_id", "title", "text"}), queries.jsonl
({"_id", "text"}) and qrels/test.tsv (query-id, corpus-id, score). Each corpus entry is written as
one document file, so it goes through the same parse/chunk/embed path as user documents; chunk
hits are mapped back to corpus ids through the file name, keeping each document's best rank.

Metrics follow trec_eval (the definitions BEIR reports, via pytrec_eval): nDCG@k with linear gain
and the ideal ranking from all judged-relevant documents, Recall@k over the relevant documents
(score > 0), and MRR@k, the reciprocal rank of the first relevant document within the top k.
"""

from __future__ import annotations

import csv
import json
import math
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragline.records import Hit

CUTOFFS = {"ndcg@10": 10, "recall@10": 10, "recall@100": 100, "mrr@10": 10}
# Documents ranked per query: enough for Recall@100.
RANK_DEPTH = 100
# Chunks fetched per ranked document (documents longer than one chunk take several hits).
CHUNKS_PER_DOC = 2


class DatasetError(ValueError):
    """The dataset folder is not in BEIR format; the message says what is missing."""


@dataclass
class BeirDataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # query id -> text, only queries with a relevant document
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}

    def sample(self, max_docs: int | None = None, max_queries: int | None = None) -> BeirDataset:
        """The first `max_docs` documents and the first `max_queries` queries judged on them only."""
        doc_ids = list(self.corpus)[:max_docs] if max_docs else list(self.corpus)
        kept = set(doc_ids)
        query_ids = [q for q in self.queries if all(d in kept for d, rel in self.qrels[q].items() if rel > 0)][
            :max_queries
        ]
        return BeirDataset(
            self.name,
            {d: self.corpus[d] for d in doc_ids},
            {q: self.queries[q] for q in query_ids},
            {q: self.qrels[q] for q in query_ids},
        )


def _read_jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{number} is not valid JSON ({exc.msg})") from exc


def beir_paths(folder: str | Path, split: str = "test") -> dict[str, Path]:
    """The dataset's files, or a DatasetError naming the missing ones."""
    root = Path(folder).expanduser()
    paths = {name: root / name for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv")}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        raise DatasetError(
            f"{root} is not a BEIR dataset folder: missing {', '.join(missing)} "
            f"(expected corpus.jsonl, queries.jsonl and qrels/{split}.tsv)"
        )
    return paths


def load_beir(folder: str | Path, split: str = "test", limit_queries: int | None = None) -> BeirDataset:
    """Load a BEIR folder; only queries with at least one relevant document are kept."""
    root = Path(folder).expanduser()
    paths = beir_paths(root, split)
    corpus = {
        str(row["_id"]): (str(row.get("title") or ""), str(row.get("text") or ""))
        for row in _read_jsonl(paths["corpus.jsonl"])
    }
    qrels = read_qrels(paths[f"qrels/{split}.tsv"])
    queries = {}
    for row in _read_jsonl(paths["queries.jsonl"]):
        qid = str(row["_id"])
        if any(rel > 0 for rel in qrels.get(qid, {}).values()):
            queries[qid] = str(row["text"])
    if not queries:
        raise DatasetError(f"no query in {paths['queries.jsonl']} has a relevant document in qrels/{split}.tsv")
    if limit_queries:
        queries = dict(list(queries.items())[:limit_queries])
    return BeirDataset(root.name, corpus, queries, {q: qrels[q] for q in queries})


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    return qrels


# -- corpus as documents ------------------------------------------------------------------------


def document_text(title: str, text: str) -> str:
    """Title and text as one paragraph: BEIR's title + text input, and no title-only chunk."""
    return f"{title}\n{text}\n" if title else f"{text}\n"


def write_documents(dataset: BeirDataset, folder: str | Path) -> dict[str, str]:
    """One .txt file per corpus entry under `folder`; returns {source file name: doc id}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source_to_doc = {}
    for index, (doc_id, (title, text)) in enumerate(dataset.corpus.items()):
        # Corpus ids may hold '/', '#' or non-ASCII; the file name only needs to be unique.
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", doc_id)[:60].strip("-")
        name = f"{index:07d}-{slug}.txt"
        (folder / name).write_text(document_text(title, text), encoding="utf-8")
        source_to_doc[name] = doc_id
    return source_to_doc


def ranked_doc_ids(hits: list[Hit], source_to_doc: dict[str, str], depth: int = RANK_DEPTH) -> list[str]:
    """Corpus ids in rank order: a document ranks where its best chunk does."""
    ranked: list[str] = []
    seen: set[str] = set()
    for hit in hits:
        doc_id = source_to_doc.get(hit.payload.get("source", ""))
        if doc_id is not None and doc_id not in seen:
            seen.add(doc_id)
            ranked.append(doc_id)
            if len(ranked) == depth:
                break
    return ranked


def retrieve_run(
    queries: list[tuple[str, str]],
    search: Callable[[str, int], list[Hit]],
    source_to_doc: dict[str, str],
    depth: int = RANK_DEPTH,
) -> dict[str, list[str]]:
    """{query id: ranked corpus ids} for each (id, text), with `search(text, k)` the real retrieval
    path. Chunks are fetched CHUNKS_PER_DOC deep per wanted document, since several chunks of one
    document collapse into one entry."""
    return {qid: ranked_doc_ids(search(text, depth * CHUNKS_PER_DOC), source_to_doc, depth) for qid, text in queries}


# -- metrics ------------------------------------------------------------------------------------


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    wanted = {d for d, r in relevant.items() if r > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at_k(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if relevant.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def per_query_metrics(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """{query id: {metric: value}} for every judged query (a query missing from the run scores 0)."""
    scores = {}
    for qid, relevant in qrels.items():
        ranked = run.get(qid, [])
        scores[qid] = {
            "ndcg@10": ndcg_at_k(ranked, relevant, 10),
            "recall@10": recall_at_k(ranked, relevant, 10),
            "recall@100": recall_at_k(ranked, relevant, 100),
            "mrr@10": mrr_at_k(ranked, relevant, 10),
        }
    return scores


def mean_metrics(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    per_query = per_query_metrics(run, qrels)
    return {name: float(np.mean([s[name] for s in per_query.values()])) for name in CUTOFFS}


def run_with_scores(run: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """A ranked run as {query: {doc: score}} with strictly falling scores (trec_eval's input)."""
    return {qid: {d: float(len(docs) - i) for i, d in enumerate(docs)} for qid, docs in run.items()}


# -- whole passages, embedded directly (the chunking baseline) ----------------------------------


def direct_dense_run(dataset: BeirDataset, embedder, depth: int = RANK_DEPTH) -> dict[str, list[str]]:
    """Rank whole passages by cosine similarity without chunking or a store: the baseline the
    ingest path must match."""
    from ragline.retrieval import query_vector

    doc_ids = list(dataset.corpus)
    docs = embedder.embed_documents([document_text(*dataset.corpus[d]).strip() for d in doc_ids])
    run = {}
    for qid, text in dataset.queries.items():
        scores = docs @ query_vector(embedder, text)
        top = np.argsort(-scores, kind="stable")[:depth]
        run[qid] = [doc_ids[i] for i in top]
    return run


# -- end-to-end answers -------------------------------------------------------------------------


@dataclass
class QAItem:
    question: str
    answers: list[str]
    gold: list[str] = field(default_factory=list)  # corpus ids of the passages that hold the answer


def load_qa(path: str | Path) -> list[QAItem]:
    """JSONL lines {"question", "answers": [...], "gold": [...]}, or a SQuAD-format JSON file
    (answerable questions only; gold is "<title>#<paragraph index>", BEIR's SQuAD ids)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: pass a QA file (JSONL or SQuAD JSON)")
    if path.suffix == ".json":
        return _squad_items(json.loads(path.read_text(encoding="utf-8")))
    items = []
    for row in _read_jsonl(path):
        gold = row.get("gold") or []
        items.append(QAItem(row["question"], list(row["answers"]), [gold] if isinstance(gold, str) else list(gold)))
    return items


def _squad_items(data: dict) -> list[QAItem]:
    items = []
    for article in data.get("data", []):
        for index, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                answers = sorted({a["text"] for a in qa.get("answers", [])})
                if answers:
                    items.append(QAItem(qa["question"], answers, [f"{article['title']}#{index}"]))
    return items


def normalize_answer(text: str) -> str:
    """SQuAD's normalization: lowercase, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def contains_reference(answer: str, references: list[str]) -> bool:
    normalized = normalize_answer(answer)
    return any(normalize_answer(ref) and normalize_answer(ref) in normalized for ref in references)


def score_answers(items: list[QAItem], answers: list[dict], source_to_doc: dict[str, str]) -> dict:
    """Fraction of answers containing a reference answer, and of answers citing a gold passage."""
    contains = cited = 0
    for item, answer in zip(items, answers, strict=True):
        contains += contains_reference(answer["answer"], item.answers)
        cited_docs = {source_to_doc.get(c["source"]) for c in answer["citations"]}
        cited += bool(cited_docs.intersection(item.gold))
    n = len(items)
    return {
        "answer_contains_reference": contains / n if n else 0.0,
        "citations_include_gold": cited / n if n else 0.0,
        "questions": n,
    }
