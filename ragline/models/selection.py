"""Hardware-aware model selection: one workflow, shown step by step, used by `auto` too.

1. Purpose: chat -> instruct model; search -> embedding model; rag -> both.
2. Hardware: Apple Silicon -> MLX; small GPU or CPU only -> quantized (GGUF for llama.cpp, int8
   ONNX for sentence-transformers); large GPU or cloud allowed -> full precision or an API model.
3. Priority: accuracy -> full precision; efficiency -> quantized; offline -> MLX or GGUF, no API.
4. Combine: one embedding + one instruct model, each fitting the memory left.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ragline.models import backend_table
from ragline.models.catalog import CatalogModel, load_catalog
from ragline.models.hardware import Gpu, Hardware, apply_overrides, detected_hardware, hardware_from_settings
from ragline.models.refs import resolve_model
from ragline.settings import RaglineSettings

PURPOSE_ROLES = {"rag": ("embedding", "instruct"), "chat": ("instruct",), "search": ("embedding",)}
PRIORITIES = ("auto", "accuracy", "efficiency", "offline")
LARGE_GPU_GB = 24.0  # fits a 7-9B model in bf16 with room for its KV cache
MEMORY_SHARE = {"apple": 0.70, "large-gpu": 0.90, "small-gpu": 0.90, "cpu": 0.70}
# What `auto` falls back to for a model reference that no backend can open.
DEFAULT_BACKENDS = {"embedding": "sentence-transformers", "instruct": "llama-cpp"}


@dataclass
class Step:
    number: int
    title: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Pick:
    role: str
    model: CatalogModel | None
    formats: tuple[str, ...]
    reason: str

    @property
    def backend(self) -> str | None:
        return self.model.backend if self.model else None


@dataclass
class Decision:
    purpose: str
    priority: str
    tier: str
    hardware: Hardware
    budget_gb: float
    steps: list[Step]
    picks: list[Pick]

    @property
    def used_gb(self) -> float:
        return sum(p.model.memory_gb for p in self.picks if p.model)

    def pick(self, role: str) -> Pick | None:
        return next((p for p in self.picks if p.role == role), None)

    def to_dict(self) -> dict:
        return {
            "purpose": self.purpose,
            "priority": self.priority,
            "tier": self.tier,
            "hardware": {**asdict(self.hardware), "apple_silicon": self.hardware.apple_silicon},
            "budget_gb": round(self.budget_gb, 2),
            "used_gb": round(self.used_gb, 2),
            "steps": [asdict(s) for s in self.steps],
            "picks": [
                {
                    "role": p.role,
                    "formats": list(p.formats),
                    "reason": p.reason,
                    "backend": p.backend,
                    "model": asdict(p.model) | {"model_ref": p.model.model_ref} if p.model else None,
                }
                for p in self.picks
            ],
        }

    def render(self) -> str:
        out = []
        for step in self.steps:
            out.append(f"{step.number}. {step.title}")
            out.extend(f"   - {line}" for line in step.lines)
        return "\n".join(out)


def hardware_tier(hw: Hardware) -> str:
    if hw.apple_silicon:
        return "apple"
    gpu = hw.best_gpu
    if gpu is None:
        return "cpu"
    return "large-gpu" if gpu.usable_gb >= LARGE_GPU_GB else "small-gpu"


def memory_budget(hw: Hardware, tier: str) -> tuple[float, str]:
    share = MEMORY_SHARE[tier]
    if tier in ("large-gpu", "small-gpu"):
        return hw.best_gpu.usable_gb * share, f"{share:.0%} of {hw.best_gpu.usable_gb:.1f} GB free GPU memory"
    where = "unified memory (the GPU shares it)" if tier == "apple" else "available RAM"
    return hw.available_ram_gb * share, f"{share:.0%} of {hw.available_ram_gb:.1f} GB {where}"


def default_priority(tier: str, cloud: bool) -> tuple[str, str]:
    if tier == "apple":
        return "offline", "Apple Silicon: MLX models run locally on the GPU"
    if tier == "large-gpu":
        return "accuracy", "a large GPU runs full-precision models"
    if cloud:
        return "accuracy", "no large GPU, but cloud APIs are allowed: full quality through an API"
    return "efficiency", f"{'a small GPU' if tier == 'small-gpu' else 'CPU only'}: quantized models"


def formats_for(role: str, priority: str, tier: str, cloud: bool) -> tuple[tuple[str, ...], str]:
    """Candidate formats for one role, best first, and why."""
    apple = tier == "apple"
    if priority == "offline":
        return (("mlx",), "offline on Apple Silicon -> MLX") if apple else (("gguf",), "offline -> GGUF on llama.cpp")
    if priority == "efficiency":
        if apple:
            return ("mlx",), "efficiency on Apple Silicon -> 4-bit/8-bit MLX"
        if role == "embedding":
            # Measured on SQuAD with MiniLM: int8 recall@10 0.9358 vs torch 0.9392 (cosine 0.995).
            return ("onnx",), "efficiency -> int8 ONNX for sentence-transformers models"
        return ("gguf",), "efficiency -> 4-bit GGUF on llama.cpp"
    # accuracy
    if tier == "large-gpu":
        return (("hf", "api") if cloud else ("hf",)), "accuracy on a large GPU -> full precision (bf16/fp16 torch)"
    if cloud:
        return ("api", "hf"), "accuracy with cloud allowed -> API model"
    if role == "embedding":
        return ("hf",), "accuracy -> full-precision embedder (small enough for any machine)"
    fallback = "mlx" if apple else "gguf"
    return (fallback,), f"accuracy, but full precision does not fit {tier} -> the largest {fallback.upper()} that fits"


def cpu_params_cap(hw: Hardware) -> float:
    """Largest instruct model (billions of parameters) worth running on CPU only.

    A heuristic, not a measurement: CPU decoding is memory-bandwidth bound and a 4-bit 7B model
    already needs ~8 cores for a usable few tokens/s, so allow ~1B parameters per core, min 3.5B.
    """
    return max(3.5, float(hw.cores))


def choose(
    role: str, formats: tuple[str, ...], budget_gb: float, max_params_b: float | None = None
) -> tuple[CatalogModel | None, str]:
    candidates = [m for m in load_catalog() if m.purpose == role and m.format in formats]
    if max_params_b is not None:
        candidates = [m for m in candidates if m.params_b <= max_params_b]
    if not candidates:
        return None, f"no {role} model in the catalog has format {'/'.join(formats)}"
    # Best quality first; among equals the earlier format, then the smaller model.
    candidates.sort(key=lambda m: (-m.quality, formats.index(m.format), m.memory_gb))
    for model in candidates:
        if model.memory_gb <= budget_gb:
            return (
                model,
                f"best {role} model in {'/'.join(formats)} that fits "
                f"({model.memory_gb:.1f} GB <= {budget_gb:.1f} GB left)",
            )
    smallest = min(candidates, key=lambda m: m.memory_gb)
    return (
        None,
        f"nothing fits: the smallest {role} model ({smallest.key}) needs {smallest.memory_gb:.1f} GB, "
        f"{budget_gb:.1f} GB left",
    )


def recommend(purpose: str, priority: str, hw: Hardware) -> Decision:
    if purpose not in PURPOSE_ROLES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSE_ROLES)}, not {purpose!r}")
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
    roles = PURPOSE_ROLES[purpose]
    tier = hardware_tier(hw)
    budget, budget_note = memory_budget(hw, tier)
    steps = [Step(1, f"Purpose: {purpose}", [_purpose_line(purpose)])]
    detected = f"detected: {hw.describe()}"
    if hw.overridden:
        detected += f" (from settings: {', '.join(hw.overridden)})"
    steps.append(
        Step(2, f"Hardware: {tier}", [detected, _tier_line(tier), f"memory budget: {budget:.1f} GB = {budget_note}"])
    )

    step3 = Step(3, "Priority", [])
    if priority == "auto":
        priority, why = default_priority(tier, hw.cloud_allowed)
        step3.lines.append(f"auto -> {priority} ({why})")
    step3.title = f"Priority: {priority}"
    plan = {role: formats_for(role, priority, tier, hw.cloud_allowed) for role in roles}
    step3.lines.extend(f"{role}: {why} [{'/'.join(formats)}]" for role, (formats, why) in plan.items())
    steps.append(step3)

    step4, picks, left = Step(4, "Combine and fit memory"), [], budget
    # The embedder is small and indexing needs it, so it is placed first.
    for role in roles:
        formats = plan[role][0]
        cap = cpu_params_cap(hw) if tier == "cpu" and role == "instruct" else None
        if cap is not None:
            step4.lines.append(
                f"CPU only with {hw.cores} cores: instruct models up to {cap:.1f}B parameters stay usable"
            )
        model, reason = choose(role, formats, left, cap)
        picks.append(Pick(role, model, formats, reason))
        if model:
            left -= model.memory_gb
            step4.lines.append(
                f"{role}: {model.key} ({model.model_ref}, {model.format} {model.quantization}) "
                f"via {model.backend} - {reason}"
            )
        else:
            step4.lines.append(f"{role}: none - {reason}")
    used = budget - left
    step4.lines.append(f"total {used:.1f} GB of {budget:.1f} GB budget ({left:.1f} GB free)")
    steps.append(step4)
    return Decision(purpose, priority, tier, hw, budget, steps, picks)


def _purpose_line(purpose: str) -> str:
    return {
        "rag": "RAG -> an embedding model for retrieval + an instruct model for the answer",
        "chat": "chat / assistant / QA -> an instruct model",
        "search": "search / recommendation -> an embedding model",
    }[purpose]


def _tier_line(tier: str) -> str:
    return {
        "apple": "Apple Silicon (macOS + arm64) -> MLX models",
        "large-gpu": f"CUDA GPU with >= {LARGE_GPU_GB:.0f} GB -> full precision (fp16/bf16) models",
        "small-gpu": f"CUDA GPU under {LARGE_GPU_GB:.0f} GB -> quantized models (GGUF offloaded to the GPU, int8 ONNX)",
        "cpu": "CPU only -> quantized models (GGUF for llama.cpp, int8 ONNX for sentence-transformers)",
    }[tier]


# -- `auto` backends: the same decision, applied to the model the settings name --------------------


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


def runnable_backends(model_ref: str, role: str, api_base: str | None) -> tuple[str, ...]:
    """The backends that can load `model_ref` at all, most general first."""
    return backend_table.opening(role, reference_kinds(model_ref, api_base))


def backend_for(model_ref: str, role: str, api_base: str | None, decision: Decision) -> str:
    """The decision's backend when it can run the configured model, else the most general one."""
    pick = decision.pick(role)
    runnable = runnable_backends(model_ref, role, api_base)
    # The decision picks MLX formats only on Apple Silicon, so its backend suits this machine as is.
    preferred = pick.backend if pick else None
    if preferred in runnable:
        return preferred
    # Nothing can open the reference: the default backend says why when it loads.
    return runnable[0] if runnable else DEFAULT_BACKENDS[role]


def stable_decision(settings: RaglineSettings) -> Decision:
    """The decision for this machine as if idle (all RAM and GPU memory free).

    `auto` must resolve the same way in every process: a collection records the embedding
    backend that built it, and a pick that followed momentary free memory would flip between
    runs and make the next ingest or query refuse the collection.
    """
    hw = apply_overrides(detected_hardware(), settings.hardware)
    idle = replace(
        hw,
        available_ram_gb=hw.ram_gb,
        gpus=tuple(Gpu(g.name, g.memory_gb, g.memory_gb) for g in hw.gpus),
    )
    return recommend("rag", settings.selection.priority, idle)
