"""The specs the settings name: which embedder and generator to build, with `auto` decided.

`auto` is decided from the settings passed in (the hardware they describe and
selection.priority), the same way in every process. What each backend is, runs and loads is the
backend table (ragline/models/backend_table.py). Building a spec loads nothing;
`get_embedder(spec).warm_up()` / `get_generator(spec).warm_up()` load the model.
"""

from __future__ import annotations

from dataclasses import replace

from ragline.embedders import EmbedderSpec
from ragline.generators import GeneratorSpec
from ragline.models.selection import backend_for, stable_decision
from ragline.settings import RaglineSettings


def embedder_spec(settings: RaglineSettings) -> EmbedderSpec:
    e = settings.embedding
    spec = EmbedderSpec(
        backend=e.backend,
        model=e.model,
        device=e.device,
        batch_size=e.batch_size,
        max_seq_length=e.max_seq_length,
        api_base=e.api_base,
        api_key=e.api_key.get_secret_value() if e.api_key else None,
    )
    return _decided(spec, "embedding", settings)


def generator_spec(settings: RaglineSettings) -> GeneratorSpec:
    g = settings.generation
    spec = GeneratorSpec(
        backend=g.backend,
        model=g.model,
        context_window=g.context_window,
        threads=g.threads,
        n_gpu_layers=g.n_gpu_layers,
        api_base=g.api_base,
        api_key=g.api_key.get_secret_value() if g.api_key else None,
        repeat_penalty=g.repeat_penalty,
    )
    return _decided(spec, "instruct", settings)


def _decided(spec, role: str, settings: RaglineSettings):
    """`spec` with `auto` replaced by the backend the selection picks for its model on this machine."""
    if spec.backend != "auto":
        return spec
    return replace(spec, backend=backend_for(spec.model, role, spec.api_base, stable_decision(settings)))
