"""The model backends: how the settings name an embedder and a generator (specs).

Building a spec loads nothing; `ragline.embedders.get_embedder` / `ragline.generators.get_generator`
load the model the spec names.
"""

from __future__ import annotations

from ragline.embedders import EmbedderSpec
from ragline.generators import GeneratorSpec
from ragline.settings import RaglineSettings


def embedder_spec(settings: RaglineSettings) -> EmbedderSpec:
    e = settings.embedding
    return EmbedderSpec(
        backend=e.backend,
        model=e.model,
        device=e.device,
        batch_size=e.batch_size,
        max_seq_length=e.max_seq_length,
        api_base=e.api_base,
        api_key=e.api_key.get_secret_value() if e.api_key else None,
    )


def generator_spec(settings: RaglineSettings) -> GeneratorSpec:
    g = settings.generation
    return GeneratorSpec(
        backend=g.backend,
        model=g.model,
        context_window=g.context_window,
        threads=g.threads,
        n_gpu_layers=g.n_gpu_layers,
        api_base=g.api_base,
        api_key=g.api_key.get_secret_value() if g.api_key else None,
        repeat_penalty=g.repeat_penalty,
    )
