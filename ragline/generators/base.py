"""The generator protocol, the registry over the backend table, and one generator per spec per process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ragline.embedders.base import LazyModel, one_per_spec
from ragline.models import backend_table

Message = dict[str, str]


@runtime_checkable
class Generator(Protocol):
    name: str
    context_window: int

    def warm_up(self) -> None: ...

    def generate(self, messages: list[Message], max_tokens: int, temperature: float) -> str: ...

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]: ...

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
    device: str = "auto"  # transformers: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps


class LazyGenerator(LazyModel):
    """What every generator shares: the spec, the name, and generate() as the joined stream."""

    def __init__(self, spec: GeneratorSpec):
        super().__init__()
        self.spec = spec
        self.name = f"{spec.backend}:{spec.model}"
        self.context_window = spec.context_window

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        raise NotImplementedError

    def generate(self, messages: list[Message], max_tokens: int, temperature: float) -> str:
        return "".join(self.stream(messages, max_tokens, temperature))


class TokenizerGenerator(LazyGenerator):
    """A model run in this process with a Hugging Face-style tokenizer (`self.tokenizer`, set by
    `_load`): transformers and mlx-lm."""

    def __init__(self, spec: GeneratorSpec):
        super().__init__(spec)
        # One generation at a time: a model shared by threads would interleave their KV caches.
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt(self, messages: list[Message]) -> str:
        """The chat template applied; base models without one get a plain transcript."""
        self.warm_up()
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"


def register_backend(name: str, target: str) -> None:
    """Add a generation backend (or re-point one): `target` is "module:Class" taking a GeneratorSpec."""
    backend_table.register("instruct", name, target)


def available_backends() -> list[str]:
    return backend_table.loadable("instruct")


_generators = one_per_spec(lambda spec: backend_table.loader_class("instruct", spec.backend)(spec), maxsize=2)


def get_generator(spec: GeneratorSpec) -> Generator:
    """One generator per spec per process, not loaded yet: call warm_up(), or just use it."""
    return _generators(spec)
