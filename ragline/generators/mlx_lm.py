"""MLX models (mlx-community builds) through mlx-lm. mlx-lm has no GGUF loader: use MLX folders."""

from __future__ import annotations

from collections.abc import Iterator

from ragline.embedders.base import MissingDependencyError, ModelFormatError
from ragline.generators.base import Message, TokenizerGenerator
from ragline.models.refs import resolve_model


class MlxLmGenerator(TokenizerGenerator):
    def _load(self) -> None:
        try:
            import mlx_lm
            from mlx_lm.sample_utils import make_sampler
        except ImportError as exc:
            raise MissingDependencyError.for_backend("instruct", "mlx-lm") from exc
        location = resolve_model(self.spec.model)
        if location.local and location.path.suffix == ".gguf":
            raise ModelFormatError(
                f"mlx-lm cannot load GGUF files ({location.path}); use backend 'llama-cpp' for it, "
                "or an MLX folder / mlx-community model for 'mlx-lm'."
            )
        self._mlx_lm = mlx_lm
        self._make_sampler = make_sampler
        self.model, self.tokenizer = mlx_lm.load(str(location.path) if location.local else location.hub_id)

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        prompt = self.prompt(messages)
        sampler = self._make_sampler(temp=temperature)
        with self._lock:
            for response in self._mlx_lm.stream_generate(
                self.model, self.tokenizer, prompt, max_tokens=max_tokens, sampler=sampler
            ):
                if response.text:
                    yield response.text
