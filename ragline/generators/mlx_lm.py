"""MLX models (mlx-community builds) through mlx-lm. mlx-lm has no GGUF loader: use MLX folders."""

from __future__ import annotations

import threading
from typing import Iterator

from ragline.embedders.base import MissingDependencyError, ModelFormatError
from ragline.generators.base import GeneratorSpec, Message
from ragline.models.refs import resolve_model


class MlxLmGenerator:
    def __init__(self, spec: GeneratorSpec):
        try:
            import mlx_lm
            from mlx_lm.sample_utils import make_sampler
        except ImportError as exc:
            raise MissingDependencyError.for_extra("mlx-lm", "mlx") from exc
        location = resolve_model(spec.model)
        if location.local and location.path.suffix == ".gguf":
            raise ModelFormatError(
                f"mlx-lm cannot load GGUF files ({location.path}); use backend 'llama-cpp' for it, "
                "or an MLX folder / mlx-community model for 'mlx-lm'."
            )
        self._mlx_lm = mlx_lm
        self._make_sampler = make_sampler
        self.model, self.tokenizer = mlx_lm.load(str(location.path) if location.local else location.hub_id)
        self.name = f"mlx-lm:{spec.model}"
        self.context_window = spec.context_window
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt(self, messages: list[Message]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # Base models without a chat template get a plain transcript.
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join(lines) + "\nassistant:"

    def generate(self, messages: list[Message], max_tokens: int, temperature: float) -> str:
        return "".join(self.stream(messages, max_tokens, temperature))

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        sampler = self._make_sampler(temp=temperature)
        with self._lock:
            for response in self._mlx_lm.stream_generate(
                self.model, self.tokenizer, self.prompt(messages), max_tokens=max_tokens, sampler=sampler
            ):
                if response.text:
                    yield response.text
