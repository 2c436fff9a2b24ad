"""Load test of `ragline serve`'s OpenAI-compatible chat API on loopback (issue 18).

A real local Prefect server and a real `ragline serve` answer N requests from C concurrent
clients (the official `openai` client, half of the requests streamed) over a synthetic corpus of
one-fact documents: "What is the codename of project <P>?" has exactly one right passage, and
each codename appears in one document only, so an answer that names another project's codename,
or whose top passage is another project's, is a mixed-up answer.

Reported per request, from the client's latency and the server's timings in the response:
  overhead beyond generation = latency - answer_s - queue_s  (HTTP, retrieval, bookkeeping)
  queue wait                 = queue_s  (waiting for the one answer thread: other requests' generation)
where answer_s is the time in `answering.answer_question` (generation, then the citation check);
and the Prefect recording (done after the response, in the background): per-record seconds, which
is what recording inline would add to every response, and whether every request became a run.
`--worker-runs N` also times the pre-existing Prefect path (`ragline serve`'s task worker,
answer_question.delay()) for comparison.

    .venv/bin/python benchmarks/chat_load.py --requests 50 --clients 5 --answer-mode auto
    .venv/bin/python benchmarks/chat_load.py --requests 10 --clients 5 --answer-mode generate --max-tokens 16
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from tests.serving import ServeProcess, serve_env  # noqa: E402

PROJECTS = ["Aster", "Birch", "Cobalt", "Dune", "Ember", "Fjord", "Garnet", "Heron", "Indigo", "Juniper"]
CODENAMES = ["KESTREL", "MARLIN", "OSPREY", "PELICAN", "QUOKKA", "RAVEN", "SALMON", "TAPIR", "URCHIN", "VULTURE"]


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for project, code in zip(PROJECTS, CODENAMES, strict=True):
        text = f"# Project {project}\n\nThe codename of project {project} is {code}. It was started in the lab.\n"
        (folder / f"{project.lower()}.md").write_text(text)
    return folder


def ask_one(client, i: int, max_tokens: int) -> dict:
    """One request; returns its measurements and whether it was answered correctly and unmixed."""
    p = i % len(PROJECTS)
    question = f"What is the codename of project {PROJECTS[p]}?"
    stream = i % 2 == 1
    started = time.perf_counter()
    try:
        messages = [{"role": "user", "content": question}]
        if stream:
            chunks = list(
                client.chat.completions.create(model="ragline", messages=messages, max_tokens=max_tokens, stream=True)
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
            extra = chunks[-1].model_extra
        else:
            response = client.chat.completions.create(model="ragline", messages=messages, max_tokens=max_tokens)
            text, extra = response.choices[0].message.content, response.model_extra
    except Exception as exc:
        return {"i": i, "ok": False, "mixed": False, "error": repr(exc)}
    latency = time.perf_counter() - started
    about = extra["ragline"]
    foreign = [code for j, code in enumerate(CODENAMES) if j != p and code.lower() in text.lower()]
    mixed = (
        bool(foreign) or about["question"] != question or about["retrieved"][0]["source"] != f"{PROJECTS[p].lower()}.md"
    )
    t = about["timings"]
    return {
        "i": i,
        "ok": True,
        "mixed": mixed,
        "stream": stream,
        "latency_s": latency,
        "overhead_s": latency - t["answer_s"] - t["queue_s"],
        "queue_s": t["queue_s"],
        "answer_s": t["answer_s"],
        "generate_s": t.get("generate_s", 0.0),
        "retrieve_s": t["retrieve_s"],
        "correct_codename": CODENAMES[p].lower() in text.lower(),
        "request_id": about["request_id"],
    }


def percentiles(values: list[float]) -> dict:
    a = np.array(values)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3)}


def load(url: str, requests: int, clients: int, max_tokens: int) -> list[dict]:
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=900)
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda i: ask_one(client, i, max_tokens), range(requests)))


def wait_recorded(url: str, expected: int, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        stats = httpx.get(url + "/health", timeout=30).json()["recorder"]
        if stats["recorded"] + stats["failed"] + stats["dropped"] >= expected or time.monotonic() > deadline:
            return stats
        time.sleep(1)


def prefect_runs(api: str, names: list[str]) -> int:
    body = {"flow_runs": {"name": {"any_": names}}, "flows": {"name": {"any_": ["serve-request"]}}}
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=60).json()
    return sum(r["state_type"] == "COMPLETED" for r in runs)


def time_query_worker(runs: int) -> list[float]:
    """The existing Prefect path: trigger to answer minus generation (answer_question.delay())."""
    from ragline.deployments.worker import ask_via_worker

    overheads = []
    for i in range(runs):
        started = time.perf_counter()
        answer = ask_via_worker(900, question=f"What is the codename of project {PROJECTS[i]}?")
        t = answer["timings"]
        overheads.append(time.perf_counter() - started - t.get("generate_s", 0.0) - t.get("check_s", 0.0))
    return overheads


def summarize(results: list[dict], recorder: dict, runs_in_prefect: int, worker: list[float]) -> dict:
    ok = [r for r in results if r["ok"]]
    return {
        "requests": len(results),
        "failed": len(results) - len(ok),
        "mixed": sum(r["mixed"] for r in ok),
        "correct_codename": sum(r["correct_codename"] for r in ok),
        "latency_s": percentiles([r["latency_s"] for r in ok]),
        "overhead_beyond_generation_s": percentiles([r["overhead_s"] for r in ok]),
        "queue_wait_s": percentiles([r["queue_s"] for r in ok]),
        "answer_s": percentiles([r["answer_s"] for r in ok]),
        "generate_s": percentiles([r["generate_s"] for r in ok]),
        "retrieve_s": percentiles([r["retrieve_s"] for r in ok]),
        "recorder": recorder,
        "prefect_runs_completed": runs_in_prefect,
        "query_worker_overhead_s": percentiles(worker) if worker else None,
        "errors": [r["error"] for r in results if not r["ok"]][:5],
    }


def run(args, workdir: Path) -> dict:
    from ragline.deployments.local_server import _apply, local_api_url, start_local_server
    from tests.conftest import free_port, run_cli, stop_process

    prefect_port = free_port()
    prefect = start_local_server(workdir / "prefect-home", prefect_port, timeout_s=300)
    try:
        api = _apply(local_api_url(prefect_port))
        corpus = write_corpus(workdir / "docs")
        port = free_port()
        env = {
            **serve_env(api, workdir / "data", corpus),
            "RAGLINE_SERVE__PORT": str(port),
            "RAGLINE_SERVE__MAX_QUEUE": str(max(16, args.clients * 2)),
            "RAGLINE_GENERATION__MAX_TOKENS": str(args.max_tokens),
            "RAGLINE_RETRIEVAL__K": "2",
            "RAGLINE_GENERATION__THREADS": str(args.threads),
            "RAGLINE_ANSWER__MODE": args.answer_mode,
        }
        os.environ.update({k: env[k] for k in ("RAGLINE_DATA_DIR", "RAGLINE_GENERATION__MAX_TOKENS")})
        server = ServeProcess(env, workdir / "serve.log")
        try:
            server.wait_ready()
            result = run_cli("ingest", str(corpus), env=env)
            if result.returncode != 0:
                raise RuntimeError(result.stderr)
            url = f"http://127.0.0.1:{port}"
            load(url, 2, 1, args.max_tokens)  # warm-up: first-call costs are not serving overhead
            started = time.perf_counter()
            results = load(url, args.requests, args.clients, args.max_tokens)
            wall = time.perf_counter() - started
            recorder = wait_recorded(url, args.requests + 2)
            recorder["backlog_drained_s"] = round(time.perf_counter() - started - wall, 1)  # after the last answer
            names = [f"chat-{r['request_id']}" for r in results if r["ok"]]
            worker = time_query_worker(args.worker_runs) if args.worker_runs else []
            summary = summarize(results, recorder, prefect_runs(api, names), worker)
            summary["wall_s"] = round(wall, 1)
            return summary
        finally:
            server.stop()
    finally:
        stop_process(prefect, timeout_s=30)


def markdown(s: dict, args) -> str:
    row = lambda name, d: f"| {name} | {d['p50']:.3f} s | {d['p95']:.3f} s |"  # noqa: E731
    lines = [
        f"{s['requests']} requests from {args.clients} clients (half streamed), max_tokens {args.max_tokens}, "
        f"answer.mode {args.answer_mode}, {args.threads} llama.cpp thread(s), "
        f"{s['wall_s']} s wall; failed {s['failed']}, mixed-up {s['mixed']}; "
        f"{s['prefect_runs_completed']} of {s['requests'] - s['failed']} recorded as completed Prefect runs.",
        "",
        "| per request | p50 | p95 |",
        "|---|--:|--:|",
        row("latency (client)", s["latency_s"]),
        row("overhead beyond answering (latency - answer_s - queue_s)", s["overhead_beyond_generation_s"]),
        row("queue wait for the answer thread (others' generation)", s["queue_wait_s"]),
        row("answering (answer_s: generation + citation check)", s["answer_s"]),
        row("of which generation (generate_s)", s["generate_s"]),
        row("retrieval (retrieve_s)", s["retrieve_s"]),
    ]
    rec = s["recorder"]
    if rec["p50_s"] is not None:
        background = {"p50": rec["p50_s"], "p95": rec["p95_s"]}
        lines.append(row("Prefect recording, in the background (not in the latency)", background))
        lines.append(f"| all runs recorded, after the last answer | {rec['backlog_drained_s']} s | |")
    if s["query_worker_overhead_s"]:
        lines.append(
            row(
                "for comparison: query worker `.delay()` trigger->answer minus generation", s["query_worker_overhead_s"]
            )
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--answer-mode",
        default="generate",
        choices=["auto", "extractive", "generate"],
        help="answer.mode (auto: extractive with the bundled SmolLM2; generate: the serialized generation path)",
    )
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1: robust on a busy machine)")
    parser.add_argument("--worker-runs", type=int, default=3, help="query-worker requests to compare with (0: skip)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ragline-bench-chat-"))
    try:
        summary = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = markdown(summary, args)
    print(table)
    out_dir = REPO_ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {"benchmark": "chat_load", "when": stamp, "cpus": os.cpu_count(), "args": vars(args), **summary}
    (out_dir / f"chat_load-{stamp}.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
