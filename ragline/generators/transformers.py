"""Full-precision models through Hugging Face transformers: bf16/fp16 on CUDA or Apple MPS, fp32 on CPU.

This is the backend for the catalog's `hf` instruct models (Llama-3-8B-Instruct, Qwen2.5, ...), and
for any local transformers folder. A GGUF file loads too (`gguf_file=`): transformers de-quantizes
it to a full-precision torch model, which is how the tests run this backend on the bundled SmolLM2.
Answers are streamed with TextIteratorStreamer: generate() runs in a thread, the caller reads text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from ragline.embedders.base import MissingDependencyError
from ragline.generators.base import Message, TokenizerGenerator
from ragline.models.refs import resolve_model


def torch_device(requested: str = "auto") -> str:
    """`auto`: CUDA when present, then Apple's MPS, else CPU."""
    if requested != "auto":
        return requested
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def torch_dtype(device: str):
    """Full precision for the device: bf16 where CUDA supports it, else fp16 on a GPU; fp32 on CPU
    (CPU half-precision matmuls are slow or missing in most torch builds)."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


def load_arguments(model_ref: str) -> tuple[str, dict]:
    """What from_pretrained needs for a reference: (folder or hub ID, extra keyword arguments)."""
    location = resolve_model(model_ref)
    if location.local:
        path: Path = location.path
        if path.suffix == ".gguf":
            return str(path.parent), {"gguf_file": path.name}
        return str(path), {}
    hub_id = location.hub_id
    if hub_id.endswith(".gguf"):  # "owner/repo/file.gguf"
        repo, _, filename = hub_id.rpartition("/")
        return repo, {"gguf_file": filename}
    return hub_id, {}


class TransformersGenerator(TokenizerGenerator):
    def _load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteriaList, TextIteratorStreamer
        except ImportError as exc:
            raise MissingDependencyError.for_backend("instruct", "transformers") from exc
        source, extra = load_arguments(self.spec.model)
        if "gguf_file" in extra:
            _require_gguf_packages()
        self.device = torch_device(getattr(self.spec, "device", "auto"))
        self.dtype = torch_dtype(self.device)
        if self.spec.threads and self.device == "cpu":
            torch.set_num_threads(self.spec.threads)
        self.tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=self.dtype, **extra)
        self.model = model.to(self.device).eval()
        self._streamer_class = TextIteratorStreamer
        self._stopping_list = StoppingCriteriaList
        self._torch = torch

    def prompt_ids(self, messages: list[Message]):
        """The prompt (TokenizerGenerator.prompt) as token ids on the model's device."""
        text = self.prompt(messages)  # loads the model first
        # The template already holds the special tokens (BOS, role markers).
        encoded = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return {name: tensor.to(self.device) for name, tensor in encoded.items()}

    def stream(self, messages: list[Message], max_tokens: int, temperature: float) -> Iterator[str]:
        inputs = self.prompt_ids(messages)
        streamer = self._streamer_class(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        arguments = dict(
            **inputs,
            **sampling,
            max_new_tokens=max_tokens,
            repetition_penalty=self.spec.repeat_penalty,
            streamer=streamer,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        failure: list[BaseException] = []
        stop = threading.Event()
        arguments["stopping_criteria"] = self._stopping_list([_StopWhenSet(stop)])
        with self._lock:
            worker = threading.Thread(target=self._generate, args=(arguments, failure), daemon=True)
            worker.start()
            read_to_the_end = False
            try:
                for text in streamer:
                    if text:
                        yield text
                read_to_the_end = True
            finally:
                if not read_to_the_end:
                    # A caller that stopped reading (a client gone) must not leave generate() running
                    # on the model while the lock goes to the next request: stop it, drain its stream.
                    stop.set()
                    for _ in streamer:
                        pass
                worker.join()
        if failure:
            raise failure[0]

    def _generate(self, arguments: dict, failure: list[BaseException]) -> None:
        try:
            with self._torch.inference_mode():
                self.model.generate(**arguments)
        except BaseException as exc:  # re-raised in the reading thread; end the stream so it stops waiting
            failure.append(exc)
            arguments["streamer"].end()


def _require_gguf_packages() -> None:
    missing = [name for name in ("gguf", "accelerate") if _absent(name)]
    if missing:
        raise MissingDependencyError(
            f"transformers needs {' and '.join(missing)} to load a GGUF file: pip install 'ragline[transformers]' "
            "(or use backend 'llama-cpp', which runs GGUF files as they are)"
        )


def _absent(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


class _StopWhenSet:
    """A transformers stopping criterion: stop every sequence once `event` is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)
