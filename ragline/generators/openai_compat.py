"""Any OpenAI-compatible `/v1/chat/completions` endpoint, streamed over server-sent events."""

from __future__ import annotations

import json
from typing import Iterator

from ragline.embedders.openai_compat import api_settings, raise_for_api_error
from ragline.generators.base import GeneratorSpec, Message


class OpenAICompatGenerator:
    def __init__(self, spec: GeneratorSpec, timeout_s: float = 300.0):
        import httpx

        self.base, headers = api_settings(spec.api_base, spec.api_key)
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=timeout_s)
        self.model = spec.model
        self.name = f"openai:{spec.model}"
        self.context_window = spec.context_window

    def count_tokens(self, text: str) -> int:
        # The API exposes no tokenizer; ~4 characters per token is the usual English estimate,
        # rounded up so prompt budgeting errs on the short side.
        return len(text) // 4 + 1

    def generate(self, messages: list[Message], max_tokens: int, temperature: float) -> str:
        return "".join(self.stream(messages, max_tokens, temperature))

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        body = {
            "model": self.model, "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature, "stream": True,
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
