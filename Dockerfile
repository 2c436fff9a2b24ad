# ragline worker image: the project, its CPU-only torch, the bundled models; RAGLINE_ENV=docker.
# No secret is baked in: .env and key files are in .dockerignore, and docker-compose.yml passes
# the keys as environment variables at run time. The container runs as the non-root user ragline.
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
    RAGLINE_CACHE_DIR=/data/cache \
    PATH=/app/.venv/bin:$PATH

# CPU torch first, from PyTorch's CPU index: PyPI's default wheel pulls the multi-GB CUDA stack.
RUN python -m venv .venv \
    && .venv/bin/pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY . .
RUN scripts/setup.sh && .venv/bin/pip install --no-cache-dir -e ".[dask]" && rm -rf /root/.cache/pip

# The code and models stay root-owned (read-only to the service); /data (the volume: results,
# model caches such as the int8 ONNX export) belongs to ragline.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin ragline \
    && mkdir -p /data/cache \
    && chown -R ragline:ragline /data
USER ragline

CMD ["ragline", "serve"]
