"""GGUF models through llama-cpp-python (CPU; `n_gpu_layers` offloads to a GPU build)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ragline.generators.base import GeneratorSpec, LazyGenerator, Message
from ragline.models.hardware import usable_cpus
from ragline.models.refs import resolve_model


def _default_threads() -> int:
    # The CPUs this process may use (sched_getaffinity where it exists; it does not on macOS).
    return usable_cpus()


class LlamaCppGenerator(LazyGenerator):
    def __init__(self, spec: GeneratorSpec):
        super().__init__(spec)
        # A llama.cpp context is not safe to share between threads.
        self._lock = threading.Lock()

    def _load(self) -> None:
        from llama_cpp import Llama

        spec = self.spec
        location = resolve_model(spec.model)
        common = dict(
            n_ctx=spec.context_window,
            n_threads=spec.threads or _default_threads(),
            # "auto" is decided when the spec is built (ragline.backends); a spec made by hand gets CPU.
            n_gpu_layers=spec.n_gpu_layers if isinstance(spec.n_gpu_layers, int) else 0,
            verbose=False,
        )
        if location.local:
            self.llm = Llama(model_path=str(location.path), **common)
        else:
            # "owner/repo" picks the repo's first Q4_K_M GGUF; "owner/repo/file.gguf" names one.
            repo, _, filename = location.hub_id.partition(".gguf")[0].rpartition("/")
            if location.hub_id.endswith(".gguf"):
                self.llm = Llama.from_pretrained(repo_id=repo, filename=filename + ".gguf", **common)
            else:
                self.llm = Llama.from_pretrained(repo_id=location.hub_id, filename="*Q4_K_M.gguf", **common)

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False))

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        self.warm_up()
        with self._lock:
            for part in self.llm.create_chat_completion(
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                repeat_penalty=self.spec.repeat_penalty,
                stream=True,
            ):
                delta = part["choices"][0]["delta"].get("content")
                if delta:
                    yield delta
