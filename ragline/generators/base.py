"""The generator protocol, the backend registry, and one cached generator per process."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, runtime_checkable

Message = dict[str, str]


@runtime_checkable
class Generator(Protocol):
    name: str
    context_window: int

    def generate(self, messages: list[Message], max_tokens: int, temperature: float) -> str: ...

    def stream(
        self, messages: list[Message], max_tokens: int, temperature: float
    ) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


@dataclass(frozen=True)
class GeneratorSpec:
    backend: str
    model: str
    context_window: int = 4096
    threads: int | None = None
    n_gpu_layers: int = 0
    api_base: str | None = None
    api_key: str | None = None
    repeat_penalty: float = 1.0


_REGISTRY: dict[str, str] = {
    "llama-cpp": "ragline.generators.llama_cpp:LlamaCppGenerator",
    "mlx-lm": "ragline.generators.mlx_lm:MlxLmGenerator",
    "openai": "ragline.generators.openai_compat:OpenAICompatGenerator",
}


def register_backend(name: str, target: str) -> None:
    _REGISTRY[name] = target


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def _factory(backend: str) -> Callable[[GeneratorSpec], Generator]:
    if backend not in _REGISTRY:
        raise ValueError(
            f"unknown generation backend {backend!r}; choose one of: {', '.join(available_backends())}"
        )
    module_name, attribute = _REGISTRY[backend].split(":")
    return getattr(importlib.import_module(module_name), attribute)


def resolve_backend(spec: GeneratorSpec) -> GeneratorSpec:
    if spec.backend != "auto":
        return spec
    try:
        from ragline.models.selection import auto_generation_backend
    except ImportError:
        return GeneratorSpec(**{**spec.__dict__, "backend": "llama-cpp"})
    return GeneratorSpec(**{**spec.__dict__, "backend": auto_generation_backend(spec)})


@functools.lru_cache(maxsize=2)
def get_generator(spec: GeneratorSpec) -> Generator:
    spec = resolve_backend(spec)
    return _factory(spec.backend)(spec)
