# ragline worker image: the project, its CPU-only torch, the bundled models; RAGLINE_ENV=docker.
FROM python:3.11-slim

# Compilers for llama-cpp-python; libmagic/poppler for document parsing.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake libmagic1 poppler-utils \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    RAGLINE_ENV=docker \
    RAGLINE_PROJECT_DIR=/app \
    PATH=/app/.venv/bin:$PATH

# CPU torch first, from PyTorch's CPU index: PyPI's default wheel pulls the multi-GB CUDA stack.
RUN python -m venv .venv \
    && .venv/bin/pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY . .
RUN scripts/setup.sh && .venv/bin/pip install --no-cache-dir -e ".[dask]" && rm -rf /root/.cache/pip

CMD ["ragline", "serve"]
