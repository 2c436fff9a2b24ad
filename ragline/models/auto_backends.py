"""`auto` backends: the selection workflow's decision, applied to the model the settings name.

A configured model the decision's backend cannot open (a GGUF file for the sentence-transformers
pick, an API endpoint) gets the most general backend that can, from the backend table.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from ragline.models import backend_table
from ragline.models.hardware import Gpu, Hardware, apply_overrides, detected_hardware, hardware_from_settings
from ragline.models.refs import resolve_model
from ragline.models.selection import Decision, recommend
from ragline.settings import RaglineSettings

# What `auto` falls back to for a model reference that no backend can open.
DEFAULT_BACKENDS = {"embedding": "sentence-transformers", "instruct": "llama-cpp"}


def decision_from_settings(settings: RaglineSettings, purpose: str = "rag", priority: str | None = None) -> Decision:
    return recommend(purpose, priority or settings.selection.priority, hardware_from_settings(settings))


def reference_kinds(model_ref: str, api_base: str | None) -> set[str]:
    """What `model_ref` is, in the backend table's REFERENCE_KINDS; empty when it names nothing."""
    if api_base:
        return {"endpoint"}
    try:
        location = resolve_model(model_ref)
    except FileNotFoundError:
        return set()
    if location.local:
        if location.path.suffix == ".gguf":
            return {"gguf"}
        return {"folder", "tokenizer-folder"} if (location.path / "tokenizer.json").exists() else {"folder"}
    hub = location.hub_id.lower()
    if "gguf" in hub:
        return {"gguf"}
    return {"mlx-hub"} if hub.startswith("mlx-community/") else {"hub"}


def runnable_backends(model_ref: str, role: str, api_base: str | None, apple_silicon: bool = True) -> tuple[str, ...]:
    """The backends that can load `model_ref` at all (on this kind of machine), most general first."""
    return backend_table.opening(role, reference_kinds(model_ref, api_base), apple_silicon)


def backend_for(model_ref: str, role: str, api_base: str | None, decision: Decision) -> str:
    """The decision's backend when it can run the configured model, else the most general one that
    can (MLX backends only on Apple Silicon)."""
    pick = decision.pick(role)
    runnable = runnable_backends(model_ref, role, api_base, decision.hardware.apple_silicon)
    preferred = pick.backend if pick else None
    if preferred in runnable:
        return preferred
    # Nothing can open the reference: the default backend says why when it loads.
    return runnable[0] if runnable else DEFAULT_BACKENDS[role]


def stable_decision(settings: RaglineSettings) -> Decision:
    """The decision `auto` uses: detection cached per process (nvidia-smi takes a noticeable part of
    a second), the budget rule the same as `recommend`'s (total memory, see ragline.models.selection)."""
    return _idle_decision(apply_overrides(detected_hardware(), settings.hardware), settings.selection.priority)


@functools.lru_cache(maxsize=16)
def _idle_decision(hw: Hardware, priority: str) -> Decision:
    # Every embed batch, stage batch and question builds its specs: decide once per machine.
    idle = replace(hw, available_ram_gb=hw.ram_gb, gpus=tuple(Gpu(g.name, g.memory_gb, g.memory_gb) for g in hw.gpus))
    return recommend("rag", priority, idle)
