"""Any OpenAI-compatible `/v1/chat/completions` endpoint, streamed over server-sent events."""

from __future__ import annotations

import json
from collections.abc import Iterator

from ragline.embedders.openai_compat import api_settings, raise_for_api_error
from ragline.generators.base import GeneratorSpec, LazyGenerator, Message


class OpenAICompatGenerator(LazyGenerator):
    def __init__(self, spec: GeneratorSpec, timeout_s: float = 300.0):
        super().__init__(spec)
        self.timeout_s = timeout_s
        self.base, self._headers = api_settings(spec.api_base, spec.api_key)

    def _load(self) -> None:
        import httpx

        self.client = httpx.Client(base_url=self.base, headers=self._headers, timeout=self.timeout_s)

    def count_tokens(self, text: str) -> int:
        # The API exposes no tokenizer; ~4 characters per token is the usual English estimate,
        # rounded up so prompt budgeting errs on the short side.
        return len(text) // 4 + 1

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        self.warm_up()
        body = {
            "model": self.spec.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_api_error(response, "chat completion")
                yield from _sse_deltas(response.iter_lines())
        except RuntimeError:
            raise
        except Exception as exc:
            raise RuntimeError(f"cannot reach the chat API at {self.base}: {exc}") from exc


def _sse_deltas(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            return
        choices = json.loads(payload).get("choices") or []
        delta = (choices[0].get("delta") or {}).get("content") if choices else None
        if delta:
            yield delta
