"""The model catalog (ragline/models/catalog.toml) as typed entries."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ragline.models import backend_table

CATALOG_PATH = Path(__file__).with_name("catalog.toml")
Format = Literal["hf", "mlx", "gguf", "onnx", "api"]
Purpose = Literal["embedding", "instruct", "completion"]  # completion: base models, run by the instruct backends


@dataclass(frozen=True)
class CatalogModel:
    key: str
    family: str
    purpose: Purpose
    format: Format
    quantization: str
    params_b: float
    memory_gb: float
    context: int
    source: str
    quality: int
    verified: str
    dims: int | None = None
    file: str | None = None
    hub_id: str | None = None
    offline: bool = False
    # Embedding models: the text each query / passage gets in front (ragline/embedders/prompts.py).
    query_prompt: str | None = None
    document_prompt: str | None = None
    trust_remote_code: bool = False  # the model needs its repository's own code to load

    @property
    def backend(self) -> str:
        """The backend that runs this entry's format (load_catalog refuses a format none runs)."""
        return backend_table.for_format(self.purpose, self.format).name

    @property
    def quantized(self) -> bool:
        return self.quantization not in ("fp32", "fp16", "bf16", "n/a")

    @property
    def model_ref(self) -> str:
        """What to put in `embedding.model` / `generation.model` to use this entry."""
        if self.source.startswith("package:"):
            return self.source.removeprefix("package:")
        if self.source.startswith("api:"):
            return self.source.rpartition("/")[2]
        return f"{self.source}/{self.file}" if self.file else self.source


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the entry and the field."""


@functools.lru_cache(maxsize=4)
def load_catalog(path: Path = CATALOG_PATH) -> tuple[CatalogModel, ...]:
    data = tomllib.loads(Path(path).read_text())
    models = []
    for index, entry in enumerate(data.get("models", [])):
        try:
            model = CatalogModel(**entry)
        except TypeError as exc:
            raise CatalogError(f"{path}: model #{index + 1} ({entry.get('key', '?')}): {exc}") from exc
        if model.purpose not in backend_table.PURPOSE_ROLES:
            raise CatalogError(f"{path}: {model.key}: purpose must be one of {', '.join(backend_table.PURPOSE_ROLES)}")
        if backend_table.for_format(model.purpose, model.format) is None:
            raise CatalogError(
                f"{path}: {model.key}: no backend runs {model.purpose} models in {model.format}; use a format "
                "listed for a backend in ragline/models/backend_table.py"
            )
        models.append(model)
    keys = [m.key for m in models]
    if len(set(keys)) != len(keys):
        raise CatalogError(f"{path}: duplicate keys: {sorted({k for k in keys if keys.count(k) > 1})}")
    return tuple(models)


def catalog_entries(model_ref: str) -> list[CatalogModel]:
    """The catalog entries a settings value names (by model_ref, or by the hub ID it was built from)."""
    return [m for m in load_catalog() if model_ref in (m.model_ref, m.source, m.hub_id)]


def sample_models(purpose: str = "", backend: str | None = None, quantized: bool | None = None, limit: int = 3):
    """Up to `limit` catalog families (largest first) for a purpose and/or a backend, as bench samples."""
    chosen = [
        m
        for m in load_catalog()
        if (not purpose or m.purpose == purpose)
        and (backend is None or m.backend == backend)
        and (quantized is None or m.quantized == quantized)
    ]
    families = dict.fromkeys(m.family for m in sorted(chosen, key=lambda m: (-m.quality, m.key)))
    return list(families)[:limit]
