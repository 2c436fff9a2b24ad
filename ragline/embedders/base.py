"""The embedder protocol, the registry over the backend table, and one embedder per spec per process."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ragline.embedders.prompts import Prompts, choose, model_prompts
from ragline.models import backend_table


class MissingDependencyError(RuntimeError):
    """An optional backend's package is not installed; the message carries the pip command."""

    @classmethod
    def for_backend(cls, role: backend_table.Role, name: str) -> MissingDependencyError:
        entry = backend_table.lookup(role, name)
        if entry is not None and entry.extra:
            return cls(f"the {name} backend needs extra packages: {entry.install_hint}")
        return cls(f"the {name} backend's packages are missing from this environment: pip install ragline")


class ModelFormatError(ValueError):
    """The configured model's format is one this backend cannot load (e.g. a folder for GGUF)."""


@runtime_checkable
class Embedder(Protocol):
    name: str  # "<backend>:<model ref>", recorded with each collection
    dimensions: int

    def warm_up(self) -> None: ...

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class EmbedderSpec:
    backend: str
    model: str
    device: str = "auto"
    batch_size: int = 32
    max_seq_length: int = 256
    api_base: str | None = None
    api_key: str | None = None
    # None: the model's own prompt (ragline/embedders/prompts.py); "" none.
    query_prompt: str | None = None
    document_prompt: str | None = None
    trust_remote_code: bool = False

    @property
    def name(self) -> str:
        """The embedder's name, which each collection it builds records; known without loading it."""
        if self.backend == "auto":
            raise ValueError(
                "embedding backend 'auto' is not decided yet: "
                "build the spec with ragline.backends.embedder_spec(settings)"
            )
        return f"{self.backend}:{self.model}"


class LazyModel:
    """Weights load in warm_up(), never in the constructor.

    Building a backend object is then free, and the caller chooses when the seconds of loading are
    paid: `ragline serve` before its first query, the ingest flow while the parsers start. A
    warm-up thread and the first request arriving together share one load.
    """

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._loaded = False

    def warm_up(self) -> None:
        """Load the model unless it is loaded; safe to call from several threads, and again."""
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:
        raise NotImplementedError


class LazyEmbedder(LazyModel):
    """What every embedder shares: the spec, the name, dimensions known once loaded, and the
    query/document prompts. A backend implements encode_texts(); prompts are applied here, so each
    backend applies them the same way (sentence-transformers overrides encode() to use its own)."""

    def __init__(self, spec: EmbedderSpec):
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self._dimensions = 0
        self._model_prompts: Prompts | None = None  # a backend that reads them at load sets this

    @property
    def dimensions(self) -> int:
        # Most backends learn it only from the loaded model (or, for an API, from one request).
        self.warm_up()
        return self._dimensions

    @property
    def prompts(self) -> Prompts:
        """The spec's prompts, else the model's own (its config_sentence_transformers.json)."""
        if self._model_prompts is None:
            self._model_prompts = model_prompts(self.spec.model)
        own = self._model_prompts
        return Prompts(choose(self.spec.query_prompt, own.query), choose(self.spec.document_prompt, own.document))

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        return self.encode(list(texts), self.prompts.document)

    def embed_query(self, text: str) -> np.ndarray:
        self.warm_up()
        return self.encode([text], self.prompts.query)[0]

    def encode(self, texts: list[str], prompt: str) -> np.ndarray:
        return self.encode_texts([prompt + text for text in texts] if prompt else texts)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def register_backend(name: str, target: str) -> None:
    """Add an embedding backend (or re-point one): `target` is "module:Class" taking an EmbedderSpec."""
    backend_table.register("embedding", name, target)


def available_backends() -> list[str]:
    return backend_table.loadable("embedding")


def one_per_spec(build: Callable[[Any], Any], maxsize: int) -> Callable[[Any], Any]:
    """`build` memoised per spec. Building is cheap (nothing loads), but the lock still keeps two
    threads asking at once from getting two objects that would each load their own copy."""
    cached = functools.lru_cache(maxsize=maxsize)(build)
    lock = threading.Lock()

    def get(spec):
        with lock:
            return cached(spec)

    return get


_embedders = one_per_spec(lambda spec: backend_table.loader_class("embedding", spec.backend)(spec), maxsize=4)


def get_embedder(spec: EmbedderSpec) -> Embedder:
    """One embedder per spec per process, not loaded yet: call warm_up(), or just use it."""
    return _embedders(spec)
