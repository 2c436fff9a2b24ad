"""Fixed costs of the runs users make most: `ragline ingest` of a 3-file folder (unchanged, and with
3 changed files) and `ragline ask` without `ragline serve`, with the local Prefect server up.

    .venv/bin/python benchmarks/small_runs.py                  # 5 runs each, 3 asks
    .venv/bin/python benchmarks/small_runs.py --runs 7 --asks 5 --max-tokens 16

Every figure is the wall time of the real `ragline` command in a fresh process (what a user
waits for), p50 over the runs. `ask` overhead = wall - the answer's own generate_s. Then one
profiled run of each in-process says where the seconds go: import time (python -X importtime,
the top packages by cumulative import), and the Prefect API round trips (every HTTP request the
process sends, counted and timed by method and path). The local Prefect server runs on a free
port under a temp data dir, started once by `ragline server start` and stopped at the end.
Commands run with a bytecode cache under the temp dir, as an installed ragline has its .pyc files
(--no-bytecode-cache keeps PYTHONDONTWRITEBYTECODE from the environment, as runs before did).
Prints JSON and a short table; saves JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

RAGLINE = Path(sys.executable).with_name("ragline")
QUESTION = "What is a prime number?"


def timed_cli(args: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run([str(RAGLINE), *args], env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"ragline {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def change_files(folder: Path, run: int) -> None:
    for path in sorted(folder.glob("*.txt")):
        with path.open("a") as handle:
            handle.write(f"\nEdit number {run} of this file, so that it is re-ingested.\n")


def measure_cli(folder: Path, env: dict, runs: int, asks: int) -> dict:
    first_s, _ = timed_cli(["ingest", str(folder), "--json"], env)
    unchanged = [timed_cli(["ingest", str(folder), "--json"], env)[0] for _ in range(runs)]
    changed = []
    for run in range(runs):
        change_files(folder, run)
        changed.append(timed_cli(["ingest", str(folder), "--json"], env)[0])
    ask_wall, ask_overhead, generate, modes = [], [], [], []
    for _ in range(asks):
        seconds, stdout = timed_cli(["ask", QUESTION, "--json"], env)
        answer = json.loads(stdout.strip().splitlines()[-1])
        timings = answer["timings"]
        modes.append(answer.get("mode", "generate"))
        ask_wall.append(seconds)
        generate.append(timings.get("generate_s", 0.0))
        ask_overhead.append(seconds - timings.get("generate_s", 0.0))
    return {
        "first_ingest_s": round(first_s, 2),
        "unchanged_s": [round(s, 2) for s in unchanged],
        "changed_3_s": [round(s, 2) for s in changed],
        "ask_wall_s": [round(s, 2) for s in ask_wall],
        "ask_generate_s": [round(s, 2) for s in generate],
        "ask_overhead_s": [round(s, 2) for s in ask_overhead],
        "ask_modes": modes,
    }


def import_profile(env: dict, top: int = 15) -> dict:
    """`python -X importtime` of the CLI module: total and the costliest top-level packages."""
    argv = [sys.executable, "-X", "importtime", "-c", "import ragline.cli.app"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    cumulative: dict[str, int] = defaultdict(int)
    total = 0
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if not match:
            continue
        self_us, name = int(match[1]), match[4]
        cumulative[name.split(".")[0]] += self_us  # self times summed per top-level package
        total += self_us
    ranked = sorted(cumulative.items(), key=lambda kv: -kv[1])[:top]
    return {"total_s": round(total / 1e6, 2), "by_package_s": {k: round(v / 1e6, 2) for k, v in ranked}}


PROFILE_CODE = r"""
import json, sys, time, collections, re
started = time.perf_counter()
import httpx
calls = collections.defaultdict(lambda: [0, 0.0])
def key(request):
    path = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", request.url.path)
    return f"{request.method} {path}"
sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send
def send(self, request, *a, **k):
    t = time.perf_counter()
    try:
        return sync_send(self, request, *a, **k)
    finally:
        c = calls[key(request)]; c[0] += 1; c[1] += time.perf_counter() - t
async def asend(self, request, *a, **k):
    t = time.perf_counter()
    try:
        return await async_send(self, request, *a, **k)
    finally:
        c = calls[key(request)]; c[0] += 1; c[1] += time.perf_counter() - t
httpx.Client.send, httpx.AsyncClient.send = send, asend
from ragline.cli.app import app
imported = time.perf_counter()
import cProfile, pstats, io
profiler = cProfile.Profile()
profiler.enable()
try:
    app(sys.argv[2:], standalone_mode=False)
except SystemExit:
    pass
profiler.disable()
done = time.perf_counter()
stats = pstats.Stats(profiler)
top = sorted(stats.stats.items(), key=lambda kv: -kv[1][3])
functions = []
for (filename, line, name), (_cc, _nc, _tt, ct, _callers) in top:
    where = filename.split("site-packages/")[-1].replace("/work/main/", "")
    if len(functions) < 40:
        functions.append(f"{ct:7.2f} s  {where}:{line} {name}")
report = {"import_s": imported - started, "command_s": done - imported,
          "requests": sum(c[0] for c in calls.values()), "request_s": sum(c[1] for c in calls.values()),
          "by_endpoint": {k: [v[0], round(v[1], 3)] for k, v in sorted(calls.items(), key=lambda kv: -kv[1][1])},
          "cumulative_top": functions}
open(sys.argv[1], "w").write(json.dumps(report))
"""


def request_profile(args: list[str], env: dict, workdir: Path) -> dict:
    """One run of `ragline ARGS` in-process with every HTTP request counted and timed."""
    out = workdir / "profile.json"
    argv = [sys.executable, "-c", PROFILE_CODE, str(out), *args]
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"profiled run failed:\n{proc.stderr[-2000:]}")
    report = json.loads(out.read_text())
    report["process_wall_s"] = round(wall, 2)
    report["interpreter_start_s"] = round(wall - report["import_s"] - report["command_s"], 2)
    for name in ("import_s", "command_s", "request_s"):
        report[name] = round(report[name], 2)
    report["by_endpoint"] = dict(list(report["by_endpoint"].items())[:12])
    return report


def profile_changed(folder: Path, env: dict, workdir: Path) -> dict:
    change_files(folder, 999)
    return request_profile(["ingest", str(folder), "--json"], env, workdir)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summarise(cli: dict) -> dict:
    p50 = {
        name: round(common.percentile(values, 50), 2)
        for name, values in cli.items()
        if isinstance(values, list) and name != "ask_modes"
    }
    return {
        "p50_unchanged_s": p50["unchanged_s"],
        "p50_changed_3_s": p50["changed_3_s"],
        "p50_ask_overhead_s": p50["ask_overhead_s"],
        "p50_ask_wall_s": p50["ask_wall_s"],
        "p50_ask_generate_s": p50["ask_generate_s"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs of each ingest case")
    p.add_argument("--asks", type=int, default=3, help="runs of ragline ask")
    p.add_argument("--max-tokens", type=int, default=16, help="generation.max_tokens for the asks")
    p.add_argument("--out", type=Path)
    p.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE from the environment (how runs before 2026-12-02 session 3 measured)",
    )
    p.add_argument("--profile-only", action="store_true", help="skip the timed runs: one ingest, then the profiles")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ragline-small-"))
    folder = workdir / "three"
    common.build_squad_corpus(folder, 3)
    env = {
        **os.environ,
        "RAGLINE_DATA_DIR": str(workdir / "data"),
        "RAGLINE_PREFECT__LOCAL_PORT": str(free_port()),
        "RAGLINE_GENERATION__MAX_TOKENS": str(args.max_tokens),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("PREFECT_API_URL", None)
    if not args.no_bytecode_cache:
        # An installed ragline has its .pyc files; a checkout run with PYTHONDONTWRITEBYTECODE=1
        # (this machine's shells) compiles every ragline module in every command (~0.4 s each).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")  # filled by server start + first ingest
    started = time.perf_counter()
    timed_cli(["server", "start"], env)
    server_start_s = time.perf_counter() - started
    try:
        cli = measure_cli(folder, env, 0 if args.profile_only else args.runs, 0 if args.profile_only else args.asks)
        profiles = {
            "ingest_unchanged": request_profile(["ingest", str(folder), "--json"], env, workdir),
            "ingest_3_changed": profile_changed(folder, env, workdir),
            "ask": request_profile(["ask", QUESTION, "--json"], env, workdir),
        }
        imports = import_profile(env)
    finally:
        subprocess.run([str(RAGLINE), "server", "stop"], env=env, capture_output=True, timeout=60)
    result = {
        "benchmark": "small-runs",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": common.git_commit(),
        "command": common.command_line(),
        "machine": common.machine(),
        "server_start_s": round(server_start_s, 2),
        "bytecode_cache": not args.no_bytecode_cache,
        **summarise(cli),
        "runs": cli,
        "profiles": profiles,
        "imports": imports,
    }
    shutil.rmtree(workdir, ignore_errors=True)
    path = common.save_result("small-runs", result, args.out)
    print(json.dumps({"result": str(path), **result}, indent=2))


if __name__ == "__main__":
    main()
