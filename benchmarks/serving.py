"""Trigger-to-answer latency of ragline's query paths, against a real local Prefect server.

Paths measured (each answers the same questions over the repo's docs/ folder):
  process-worker   `ragline deploy` + `prefect worker start`: a fresh process per flow run
  serve-deployment `ragline serve`: the `ask` deployment run in the serving process (REST trigger)
  query-worker     `ragline serve`'s task worker: `answer_question.delay()` (background task)

Latency runs from the trigger (REST create_flow_run, or .delay()) until the answer is readable;
"minus generation" subtracts the run's own generate_s, leaving the orchestration + retrieval cost.

    .venv/bin/python benchmarks/serving.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from tests.serving import (  # noqa: E402
    ServeProcess,
    create_flow_run,
    deployment,
    persisted_result,
    serve_env,
    small_docs,
)

QUESTIONS = [
    "How does ragline decide which files to skip when it ingests a folder again?",
    "Which Prefect server does ragline talk to?",
    "How are answers cited?",
    "What happens when a document fails to parse?",
    "Where does ragline keep its data?",
]


def cli(*args: str, env: dict) -> None:
    result = subprocess.run([sys.executable, "-m", "ragline.cli", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ragline {' '.join(args)} failed:\n{result.stderr}")


def wait_completed(api: str, flow_run_id: str, timeout_s: float = 900) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=30).json()["state_type"]
        if state == "COMPLETED":
            return
        if state in ("FAILED", "CRASHED", "CANCELLED"):
            raise RuntimeError(f"flow run {flow_run_id} ended {state}")
        time.sleep(0.05)
    raise TimeoutError(flow_run_id)


def time_deployment_runs(api: str, runs: int) -> list[tuple[float, float]]:
    ask = deployment(api, "ask/ragline")
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        flow_run_id = create_flow_run(api, ask["id"], {"question": QUESTIONS[i % len(QUESTIONS)]}).json()["id"]
        wait_completed(api, flow_run_id)
        answer = persisted_result(flow_run_id)
        samples.append((time.perf_counter() - started, answer["timings"]["generate_s"]))
    return samples


def time_query_worker(runs: int) -> list[tuple[float, float]]:
    from ragline.deployments.worker import ask_via_worker

    samples = []
    for i in range(runs):
        started = time.perf_counter()
        answer = ask_via_worker(900, question=QUESTIONS[i % len(QUESTIONS)])
        samples.append((time.perf_counter() - started, answer["timings"]["generate_s"]))
    return samples


def summarize(samples: list[tuple[float, float]]) -> dict:
    total = np.array([s[0] for s in samples])
    minus = np.array([s[0] - s[1] for s in samples])
    pct = lambda a, q: round(float(np.percentile(a, q)), 3)  # noqa: E731
    return {
        "runs": len(samples),
        "p50_s": pct(total, 50),
        "p95_s": pct(total, 95),
        "p50_minus_generation_s": pct(minus, 50),
        "p95_minus_generation_s": pct(minus, 95),
        "samples": [{"total_s": round(t, 3), "generate_s": g} for t, g in samples],
    }


def markdown_table(results: dict) -> str:
    lines = [
        "| path | runs | p50 trigger→answer | p95 | p50 minus generation | p95 minus generation |",
        "|---|---|---|---|---|---|",
    ]
    for path, r in results.items():
        lines.append(
            f"| {path} | {r['runs']} | {r['p50_s']:.2f} s | {r['p95_s']:.2f} s | "
            f"{r['p50_minus_generation_s']:.2f} s | {r['p95_minus_generation_s']:.2f} s |"
        )
    return "\n".join(lines)


def run(runs: int, workdir: Path) -> dict:
    from ragline.deployments.local_server import _apply, local_api_url, start_local_server
    from tests.conftest import free_port, start_process, stop_process

    port = free_port()
    server = start_local_server(workdir / "prefect-home", port, timeout_s=300)
    api = _apply(local_api_url(port))
    corpus = small_docs(workdir)
    env = serve_env(api, workdir / "data", corpus)
    os.environ.update({k: env[k] for k in ("RAGLINE_DATA_DIR", "RAGLINE_DEPLOYMENTS__INGEST_PATH")})
    results = {}
    try:
        cli("ingest", str(corpus), env=env)
        cli("deploy", env=env)
        worker = start_process(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "ragline-process", "--limit", "1"],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            results["process worker (deployment, fresh process per run)"] = summarize(time_deployment_runs(api, runs))
        finally:
            stop_process(worker, timeout_s=60)
        serving = ServeProcess(env, workdir / "serve.log")
        try:
            serving.wait_ready()
            results["ragline serve (deployment, in-process)"] = summarize(time_deployment_runs(api, runs))
            results["ragline serve query worker (.delay())"] = summarize(time_query_worker(runs))
        finally:
            serving.stop()
    finally:
        stop_process(server, timeout_s=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="questions per path")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ragline-bench-serving-"))
    try:
        results = run(args.runs, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = markdown_table(results)
    print(table)
    out_dir = REPO_ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {"benchmark": "serving", "when": stamp, "cpus": os.cpu_count(), "results": results, "table": table}
    (out_dir / f"serving-{stamp}.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
