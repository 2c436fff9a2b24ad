#!/usr/bin/env bash
# Create benchmarks/peers/.venv with LlamaIndex and Haystack for the ingestion comparison.
# Kept apart from ragline's .venv on purpose: the peers must never become ragline dependencies.
# Idempotent: does nothing when requirements.txt has not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
STAMP=.venv/.peers-installed
wanted=$(cat requirements.txt setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and alone, so the peers' packages find the CPU build and never pull a CUDA one.
.venv/bin/pip install --quiet "torch==2.13.0"
.venv/bin/pip install --quiet -r requirements.txt
echo "$wanted" > "$STAMP"
echo "peers installed in benchmarks/peers/.venv"
