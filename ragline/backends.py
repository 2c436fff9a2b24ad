"""The specs the settings name: which embedder and generator to build, with `auto` decided.

`auto` is decided from the settings passed in (the hardware they describe and
selection.priority), the same way in every process. What each backend is, runs and loads is the
backend table (ragline/models/backend_table.py). Building a spec loads nothing;
`get_embedder(spec).warm_up()` / `get_generator(spec).warm_up()` load the model.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from ragline.embedders import EmbedderSpec
from ragline.generators import GeneratorSpec
from ragline.models.auto_backends import backend_for, stable_decision
from ragline.models.catalog import catalog_entries
from ragline.models.refs import resolve_model
from ragline.models.selection import Decision
from ragline.settings import RaglineSettings

# What llama.cpp needs beside the weights (KV cache, compute buffers), as a share of the file size.
GGUF_RUNTIME_OVERHEAD = 1.2


def embedder_spec(settings: RaglineSettings) -> EmbedderSpec:
    e = settings.embedding
    query_prompt, document_prompt = e.query_prompt, e.document_prompt
    for entry in catalog_entries(e.model):  # the catalog's prompts when the settings name none
        query_prompt = entry.query_prompt if query_prompt is None else query_prompt
        document_prompt = entry.document_prompt if document_prompt is None else document_prompt
    spec = EmbedderSpec(
        backend=e.backend,
        model=e.model,
        device=e.device,
        batch_size=e.batch_size,
        max_seq_length=e.max_seq_length,
        api_base=e.api_base,
        api_key=e.api_key.get_secret_value() if e.api_key else None,
        query_prompt=query_prompt,
        document_prompt=document_prompt,
        trust_remote_code=e.trust_remote_code,
    )
    return _decided(spec, "embedding", settings)


def generator_spec(settings: RaglineSettings) -> GeneratorSpec:
    g = settings.generation
    spec = GeneratorSpec(
        backend=g.backend,
        model=g.model,
        context_window=g.context_window,
        threads=g.threads,
        n_gpu_layers=g.n_gpu_layers if isinstance(g.n_gpu_layers, int) else 0,
        api_base=g.api_base,
        api_key=g.api_key.get_secret_value() if g.api_key else None,
        repeat_penalty=g.repeat_penalty,
        device=g.device,
    )
    spec = _decided(spec, "instruct", settings)
    if g.n_gpu_layers == "auto" and spec.backend == "llama-cpp":
        spec = replace(spec, n_gpu_layers=gpu_layers(spec.model, stable_decision(settings)))
    return spec


def _decided(spec, role: str, settings: RaglineSettings):
    """`spec` with `auto` replaced by the backend the selection picks for its model on this machine."""
    if spec.backend != "auto":
        return spec
    return replace(spec, backend=backend_for(spec.model, role, spec.api_base, stable_decision(settings)))


def gpu_layers(model_ref: str, decision: Decision) -> int:
    """-1 (every layer on the GPU) when there is a GPU, llama.cpp was built for it, and the model
    fits the GPU's budget; else 0. A model that fits only partly stays on the CPU: a split model
    is bound by its CPU half, and guessing the split from the file size is fragile."""
    pool = decision.pools.get("gpu") or decision.pools.get("unified")
    if pool is None or not llama_gpu_offload():
        return 0
    size = model_size_gb(model_ref)
    return -1 if size is not None and size <= pool.budget_gb else 0


@functools.cache
def llama_gpu_offload() -> bool:
    """Whether the installed llama-cpp-python was built with a GPU backend (CUDA, Metal, ...)."""
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # not installed, or an old build without the function
        return False


def model_size_gb(model_ref: str) -> float | None:
    """Memory a GGUF model needs: its catalog entry, else its file size plus runtime overhead."""
    entries = catalog_entries(model_ref)
    if entries:
        return max(entry.memory_gb for entry in entries)
    try:
        location = resolve_model(model_ref)
    except FileNotFoundError:
        return None
    if location.local and location.path.is_file():
        return location.path.stat().st_size * GGUF_RUNTIME_OVERHEAD / 1024**3
    return None
