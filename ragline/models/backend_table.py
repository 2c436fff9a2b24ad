"""The one table of model backends: what each runs, what it can open, where, and what it is good for.

Every question about a backend is answered here: the embedder and generator registries (which
class loads it, ragline/embedders/base.py, ragline/generators/base.py), the catalog (which backend
runs a model's format, ragline/models/catalog.py), `auto` (which backends can open the configured
model, ragline/models/auto_backends.py) and `ragline models bench` (the descriptive columns).

It imports nothing from ragline, so all of those can read it. ragline.backends, which turns the
settings into specs and resolves `auto`, sits above the selection code and re-exports this table.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import Literal

Role = Literal["embedding", "instruct"]
ROLE_WORDS = {"embedding": "embedding", "instruct": "generation"}  # as error messages say it
# Catalog purposes that run on another role's backends: a base (completion) model is loaded and
# run by the same generators as an instruct model, only prompted without a chat template.
PURPOSE_ROLES: dict[str, Role] = {"embedding": "embedding", "instruct": "instruct", "completion": "instruct"}

# What a model reference can be (ragline.models.auto_backends.reference_kinds finds them):
#   endpoint          an OpenAI-compatible API (`api_base` is set)
#   gguf              a .gguf file, or a hub repo whose name says GGUF
#   mlx-hub           an mlx-community hub repo
#   folder            a local model folder
#   tokenizer-folder  a local folder with tokenizer.json (what the ONNX export reads)
#   hub               any other hub ID
REFERENCE_KINDS = ("endpoint", "gguf", "mlx-hub", "folder", "tokenizer-folder", "hub")


@dataclass(frozen=True)
class Profile:
    """The seed's comparison of model types; `ragline models bench` prints it beside its measurements."""

    model_type: str
    strengths: str
    weaknesses: str
    best_use: str


@dataclass(frozen=True)
class Backend:
    """One backend for one role.

    `formats`: the catalog formats it runs; the first backend of a role listed for a format is the
    one the catalog names. `opens`: the REFERENCE_KINDS it can load; for a reference that several
    backends open, table order is the preference (most general first). `loader` is None for a
    format no ragline backend runs yet.
    """

    name: str
    role: Role
    loader: str | None  # "module:Class"; the class takes the role's spec and loads in warm_up()
    formats: tuple[str, ...] = ()
    opens: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()  # cpu, cuda, apple (Metal), remote
    extra: str | None = None  # the pip extra its packages come from; None: ragline's core dependencies
    profile: Profile | None = None
    # `auto` picks it only on Apple Silicon: MLX also runs on Linux (mlx[cpu]), but on reference BLAS.
    apple_only: bool = False
    quantized: bool = False  # runs quantized weights (the model-type grouping of `models bench`)

    @property
    def install_hint(self) -> str:
        return f"pip install 'ragline[{self.extra}]'" if self.extra else "pip install ragline"


MLX = Profile("Apple MLX", "uses Apple-silicon GPU and unified memory", "macOS on Apple silicon only", "Macs")
API = Profile(
    "OpenAI-compatible HTTP API",
    "no local compute; large models",
    "network, cost, data leaves the machine",
    "when quality matters more than locality",
)

_ROWS = (
    Backend(
        "sentence-transformers",
        "embedding",
        "ragline.embedders.sentence_transformers:SentenceTransformerEmbedder",
        formats=("hf",),
        opens=("folder", "hub"),
        devices=("cpu", "cuda"),
        profile=Profile(
            "torch (PyTorch)",
            "reference accuracy; any hub model; fp16 on GPU",
            "heavy install; slowest CPU start and most memory",
            "GPU servers; quality baseline",
        ),
    ),
    # mlx-embeddings also loads a local sentence-transformers folder as it is.
    Backend(
        "mlx",
        "embedding",
        "ragline.embedders.mlx:MlxEmbedder",
        formats=("mlx",),
        opens=("mlx-hub", "folder"),
        devices=("apple", "cpu"),
        extra="mlx",
        profile=MLX,
        apple_only=True,
        quantized=True,
    ),
    # Listed before `onnx`: the catalog's ONNX entries are the int8 exports.
    Backend(
        "onnx-int8",
        "embedding",
        "ragline.embedders.onnx:OnnxInt8Embedder",
        formats=("onnx",),
        opens=("tokenizer-folder",),
        devices=("cpu",),
        extra="onnx",
        quantized=True,
        profile=Profile(
            "ONNX Runtime, int8 quantized",
            "smallest and fastest on CPU",
            "small accuracy loss; export step",
            "laptops, edge, high-volume CPU ingest",
        ),
    ),
    Backend(
        "onnx",
        "embedding",
        "ragline.embedders.onnx:OnnxEmbedder",
        formats=("onnx",),
        opens=("tokenizer-folder",),
        devices=("cpu",),
        extra="onnx",
        profile=Profile(
            "ONNX Runtime (fp32)",
            "faster CPU inference than torch; light runtime",
            "needs an exported model",
            "CPU servers and containers",
        ),
    ),
    Backend(
        "gguf",
        "embedding",
        "ragline.embedders.gguf:GgufEmbedder",
        formats=("gguf",),
        opens=("gguf",),
        devices=("cpu",),
        extra="gguf",
        quantized=True,
        profile=Profile(
            "llama.cpp GGUF",
            "one runtime for embedding and generation; quantized",
            "few embedding models; pooling must match the model",
            "all-in-one local installs",
        ),
    ),
    Backend(
        "openai",
        "embedding",
        "ragline.embedders.openai_compat:OpenAICompatEmbedder",
        formats=("api",),
        opens=("endpoint",),
        devices=("remote",),
        profile=API,
    ),
    # First among the hub and folder loaders: a hub ID that does not say GGUF or mlx-community is
    # most likely full-precision weights. It loads a GGUF file too (de-quantized), when named.
    Backend(
        "transformers",
        "instruct",
        "ragline.generators.transformers:TransformersGenerator",
        formats=("hf",),
        opens=("folder", "hub"),
        devices=("cuda", "apple", "cpu"),
        extra="transformers",
        profile=Profile(
            "Hugging Face transformers (bf16/fp16 on GPU)",
            "full precision; any hub model; chat template from the model",
            "a 7B model needs ~16 GB of GPU memory; slow on CPU",
            "large GPUs; quality baseline",
        ),
    ),
    Backend(
        "mlx-lm",
        "instruct",
        "ragline.generators.mlx_lm:MlxLmGenerator",
        formats=("mlx",),
        opens=("mlx-hub", "folder", "hub"),
        devices=("apple", "cpu"),
        extra="mlx",
        profile=MLX,
        apple_only=True,
        quantized=True,
    ),
    Backend(
        "llama-cpp",
        "instruct",
        "ragline.generators.llama_cpp:LlamaCppGenerator",
        formats=("gguf",),
        opens=("gguf",),  # a hub ID must name a GGUF repo or file (transformers/mlx-lm take the others)
        devices=("cpu", "cuda", "apple"),
        quantized=True,
        profile=Profile(
            "llama.cpp GGUF generator",
            "runs quantized LLMs on CPU, offloads to GPU",
            "small models answer poorly; long prompts are slow on CPU",
            "offline and local answering",
        ),
    ),
    Backend(
        "openai",
        "instruct",
        "ragline.generators.openai_compat:OpenAICompatGenerator",
        formats=("api",),
        opens=("endpoint",),
        devices=("remote",),
        profile=API,
    ),
)


@dataclass(frozen=True)
class ModelType:
    """One of the seed's four model types, the groups of `ragline models bench`."""

    name: str
    purpose: str  # the catalog purpose its sample models come from ("" for the quantized group)
    uses: str


MODEL_TYPES = (
    ModelType("chat / QA (instruct)", "instruct", "answers questions, follows instructions; the RAG answer model"),
    ModelType("embedding", "embedding", "search, recommendation, RAG retrieval"),
    ModelType("general LLM (completion)", "completion", "continues text; base models, no chat template"),
    ModelType("quantized (GGUF, int8, 4-bit MLX)", "", "the same models in less memory, for CPUs, small GPUs, Macs"),
)


def model_type(role: str, name: str) -> ModelType:
    """The model type a backend's bench row belongs to: quantized runtimes form their own group."""
    entry = lookup(role, name)
    if entry is not None and entry.quantized:
        return MODEL_TYPES[3]
    return MODEL_TYPES[0] if role == "instruct" else MODEL_TYPES[1]


# (role, name) -> Backend, in the order above; register() appends.
BACKENDS: dict[tuple[str, str], Backend] = {(row.role, row.name): row for row in _ROWS}


def register(role: Role, name: str, loader: str) -> Backend:
    """Add a backend, or point an existing one at another class (its description stays)."""
    existing = BACKENDS.get((role, name))
    entry = replace(existing, loader=loader) if existing else Backend(name, role, loader)
    BACKENDS[(role, name)] = entry
    return entry


def lookup(role: str, name: str) -> Backend | None:
    return BACKENDS.get((role, name))


def for_role(role: str) -> list[Backend]:
    role = PURPOSE_ROLES.get(role, role)
    return [entry for (entry_role, _), entry in BACKENDS.items() if entry_role == role]


def for_format(role: str, fmt: str) -> Backend | None:
    """The backend that runs `fmt` models for `role` (the catalog's `backend` column)."""
    return next((entry for entry in for_role(role) if fmt in entry.formats), None)


def loadable(role: str) -> list[str]:
    """The names ragline can load for `role`, sorted."""
    return sorted(entry.name for entry in for_role(role) if entry.loader)


def opening(role: str, kinds: set[str], apple_silicon: bool = True) -> tuple[str, ...]:
    """The loadable backends that can open a reference of these kinds, most general first
    (without the Apple-only ones on another machine)."""
    return tuple(
        entry.name
        for entry in for_role(role)
        if entry.loader and kinds & set(entry.opens) and (apple_silicon or not entry.apple_only)
    )


def loader_class(role: Role, name: str) -> type:
    """The class that loads backend `name`; the message says what to choose instead."""
    word = ROLE_WORDS[role]
    choices = ", ".join(loadable(role))
    if name == "auto":
        raise ValueError(
            f"{word} backend 'auto' is decided from the settings: build the spec with "
            "ragline.backends.embedder_spec(settings) / generator_spec(settings), or name a backend "
            f"({choices})"
        )
    entry = lookup(role, name)
    if entry is None:
        raise ValueError(f"unknown {word} backend {name!r}; choose one of: {choices}")
    if entry.loader is None:
        why = entry.profile.weaknesses if entry.profile else "ragline has no loader for it"
        raise ValueError(f"{word} backend {name!r} cannot run here ({why}); choose one of: {choices}")
    module_name, attribute = entry.loader.split(":")
    return getattr(importlib.import_module(module_name), attribute)
