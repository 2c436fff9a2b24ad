"""`ragline serve` end to end: a real Prefect server, the real models, the embedded store.

One `ragline serve` process owns the store for the whole module; everything else (REST triggers,
`ragline ingest`, `ragline ask`, `ragline ask --remote`) goes through it.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import run_cli
from tests.serving import (
    QUESTION,
    ServeProcess,
    check_answer,
    create_flow_run,
    deployment,
    persisted_result,
    run_artifacts,
    serve_env,
    small_docs,
    wait_for_run,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(prefect_api, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    corpus = small_docs(tmp)
    env = serve_env(prefect_api, tmp / "data", corpus)
    server = ServeProcess(env, tmp / "serve.log")
    try:
        server.wait_ready()
        # Routed: the store is owned by `ragline serve`, so this runs the ingest deployment there.
        result = run_cli("ingest", str(corpus), "--json", env=env)
        assert result.returncode == 0, result.stderr + server.output()
        assert "owns the store" in result.stderr
        summary = json.loads(result.stdout)
        assert summary["chunks"] > 0 and summary["counts"].get("ingested") == len(list(corpus.iterdir()))
        yield {"api": prefect_api, "env": env, "corpus": corpus, "server": server, "tmp": tmp}
    finally:
        server.stop()


def test_ask_through_rest_api_persists_result_and_artifact(served):
    api = served["api"]
    ask = deployment(api, "ask/ragline")
    assert ask["enforce_parameter_schema"] is True
    response = create_flow_run(api, ask["id"], {"question": QUESTION, "k": 3})
    assert response.status_code == 201, response.text
    run = wait_for_run(api, response.json()["id"])
    assert run["state_type"] == "COMPLETED", run["state"]

    answer = persisted_result(run["id"])
    check_answer(answer, served["corpus"])
    assert len(answer["citations"]) <= 3

    markdowns = [a for a in run_artifacts(api, run["id"]) if a["type"] == "markdown"]
    assert markdowns, "no answer artifact on the flow run"
    text = markdowns[0]["data"]
    assert QUESTION in text and "### Citations" in text
    for citation in answer["citations"]:
        assert citation["source"] in text


def test_schema_is_enforced_for_ask_runs(served):
    ask = deployment(served["api"], "ask/ragline")
    response = create_flow_run(served["api"], ask["id"], {"question": QUESTION, "k": "many"})
    assert response.status_code in (409, 422), response.text


def test_ingest_schedule_is_active_while_serving(served):
    ingest = deployment(served["api"], "ingest/ragline")
    assert ingest["paused"] is False
    assert [s["schedule"]["cron"] for s in ingest["schedules"]] == ["0 * * * *"]
    assert ingest["global_concurrency_limit"]["limit"] == 1
    assert ingest["parameters"]["path"] == str(served["corpus"])


def test_cli_ask_remote_and_routed_ask(served):
    remote = run_cli("ask", "--remote", "--json", QUESTION, env=served["env"])
    assert remote.returncode == 0, remote.stderr
    check_answer(json.loads(remote.stdout), served["corpus"])
    # Without --remote the store is still owned by `serve`: the long-lived query worker answers.
    routed = run_cli("ask", "--json", QUESTION, env=served["env"])
    assert routed.returncode == 0, routed.stderr
    check_answer(json.loads(routed.stdout), served["corpus"])


def test_ingest_and_five_queries_at_once(served):
    api, corpus = served["api"], served["corpus"]
    (corpus / "changelog.md").write_text("# Changelog\n\nragline 0.2 adds `ragline serve`, which owns the store.\n")
    ingest = deployment(api, "ingest/ragline")
    ask = deployment(api, "ask/ragline")
    questions = [
        QUESTION,
        "What does ragline serve own?",
        "How are documents chunked?",
        "Which Prefect server does ragline use?",
        "How are answers cited?",
    ]

    def trigger(args):
        deployment_id, parameters = args
        response = create_flow_run(api, deployment_id, parameters)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    jobs = [(ingest["id"], {})] + [(ask["id"], {"question": q}) for q in questions]
    with ThreadPoolExecutor(len(jobs)) as pool:
        run_ids = list(pool.map(trigger, jobs))
        runs = list(pool.map(lambda run_id: wait_for_run(api, run_id), run_ids))
    assert [r["state_type"] for r in runs] == ["COMPLETED"] * len(runs), [r["state"] for r in runs]
    summary = persisted_result(run_ids[0])
    assert any(f["source"].endswith("changelog.md") and f["status"] == "ingested" for f in summary["files"])
    for run_id in run_ids[1:]:
        check_answer(persisted_result(run_id), corpus)


def test_second_server_on_the_same_store_is_refused(served):
    result = run_cli("serve", env=served["env"], timeout=300)
    assert result.returncode == 1
    assert "already served by process" in " ".join(result.stderr.split())
