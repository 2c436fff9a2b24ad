"""Hardware-aware model selection: one workflow, shown step by step, used by `auto` too.

1. Purpose: chat -> instruct model; search -> embedding model; rag -> both; completion -> a base
   (general) LLM.
2. Hardware: Apple Silicon -> MLX; small GPU or CPU only -> quantized (GGUF for llama.cpp, int8
   ONNX for sentence-transformers); large GPU or cloud allowed -> full precision or an API model.
3. Priority: accuracy -> the best model that fits, at the highest precision that fits; efficiency
   -> quantized; offline -> MLX or GGUF, no API.
4. Combine: one model per role, each charged to the memory of the device it runs on (GPU memory,
   or RAM for a CPU-run model such as int8 ONNX), the answer model placed first.

One budget rule for `ragline models recommend` and `auto`: shares of the machine's total memory
(RAM, GPU memory), as if idle. A pick must not depend on what happens to be free at the moment:
a collection records the embedder that built it, and `auto` must resolve the same way in every
process. `recommend` says when the memory free right now is less than the picks need.
ragline/models/auto_backends.py applies the decision to the configured models.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

from ragline.models import backend_table
from ragline.models.catalog import CatalogModel, load_catalog
from ragline.models.hardware import Hardware

PURPOSE_ROLES = {
    "rag": ("embedding", "instruct"),
    "chat": ("instruct",),
    "search": ("embedding",),
    "completion": ("completion",),
}
PRIORITIES = ("auto", "accuracy", "efficiency", "offline")
LARGE_GPU_GB = 24.0  # fits a 7-9B model in bf16 with room for its KV cache
GPU_TIERS = ("large-gpu", "small-gpu")
RAM_SHARE, GPU_SHARE = 0.70, 0.90  # the rest: the OS, the Prefect server, parsers, KV caches
# The answer model matters most to a RAG answer: it is placed first, the embedder in what is left.
PLACEMENT_ORDER = ("instruct", "completion", "embedding")
PRECISION_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "n/a": 16, "Q8_0": 8, "8bit": 8, "int8": 8, "Q6_K": 6}


@dataclass
class Step:
    number: int
    title: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Pool:
    """Memory one device offers the models: `gpu` (CUDA), `ram` (CPU-run models), `unified` (Apple)."""

    name: str
    budget_gb: float
    note: str
    used_gb: float = 0.0


@dataclass
class Pick:
    role: str
    model: CatalogModel | None
    formats: tuple[str, ...]
    reason: str
    pool: str | None = None  # the device memory it is charged to

    @property
    def backend(self) -> str | None:
        return self.model.backend if self.model else None


@dataclass
class Decision:
    purpose: str
    priority: str
    tier: str
    hardware: Hardware
    budget_gb: float  # the main pool: GPU memory on a GPU machine, else RAM / unified memory
    steps: list[Step]
    picks: list[Pick]
    pools: dict[str, Pool] = field(default_factory=dict)

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
            "pools": {name: asdict(pool) for name, pool in self.pools.items()},
            "steps": [asdict(s) for s in self.steps],
            "picks": [
                {
                    "role": p.role,
                    "formats": list(p.formats),
                    "reason": p.reason,
                    "backend": p.backend,
                    "pool": p.pool,
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
    gpu = max(hw.gpus, key=lambda g: g.memory_gb, default=None)
    if gpu is None:
        return "cpu"
    return "large-gpu" if gpu.memory_gb >= LARGE_GPU_GB else "small-gpu"


def memory_pools(hw: Hardware, tier: str) -> dict[str, Pool]:
    """The budget rule: shares of total memory per device (see the module docstring)."""
    if tier == "apple":
        note = f"{RAM_SHARE:.0%} of {hw.ram_gb:.1f} GB unified memory (the GPU shares it)"
        return {"unified": Pool("unified", hw.ram_gb * RAM_SHARE, note)}
    pools = {}
    if tier in GPU_TIERS:
        gpu = max(hw.gpus, key=lambda g: g.memory_gb)
        note = f"{GPU_SHARE:.0%} of {gpu.memory_gb:.1f} GB GPU memory"
        pools["gpu"] = Pool("gpu", gpu.memory_gb * GPU_SHARE, note)
    pools["ram"] = Pool("ram", hw.ram_gb * RAM_SHARE, f"{RAM_SHARE:.0%} of {hw.ram_gb:.1f} GB RAM")
    return pools


def charged_pool(model: CatalogModel, tier: str) -> str | None:
    """The device memory a model uses: its backend's GPU when there is one it can use, else RAM."""
    if model.format == "api":
        return None
    if tier == "apple":
        return "unified"
    entry = backend_table.for_format(model.purpose, model.format)
    return "gpu" if tier in GPU_TIERS and "cuda" in entry.devices else "ram"


def default_priority(tier: str, cloud: bool) -> tuple[str, str]:
    if tier == "apple":
        return "offline", "Apple Silicon: MLX models run locally on the GPU"
    if tier == "large-gpu":
        return "accuracy", "a large GPU runs full-precision models"
    if cloud:
        return "accuracy", "no large GPU, but cloud APIs are allowed: full quality through an API"
    return "efficiency", f"{'a small GPU' if tier == 'small-gpu' else 'CPU only'}: quantized models"


def efficient_formats(role: str, apple: bool) -> tuple[tuple[str, ...], str]:
    if apple:
        return ("mlx",), "efficiency on Apple Silicon -> 4-bit/8-bit MLX"
    if role == "embedding":
        # Measured on SQuAD with MiniLM: int8 recall@10 0.9358 vs torch 0.9392 (cosine 0.995).
        return ("onnx",), "efficiency -> int8 ONNX for sentence-transformers models"
    return ("gguf",), "efficiency -> 4-bit GGUF on llama.cpp"


def formats_for(role: str, priority: str, tier: str, cloud: bool) -> tuple[tuple[str, ...], str]:
    """Candidate formats for one role, best first, and why."""
    apple = tier == "apple"
    if priority == "offline":
        return (("mlx",), "offline on Apple Silicon -> MLX") if apple else (("gguf",), "offline -> GGUF on llama.cpp")
    efficient, why = efficient_formats(role, apple)
    if priority == "efficiency":
        return efficient, why
    # accuracy: full precision first, and every format efficiency would use, so that accuracy never
    # settles for a weaker model than efficiency does on the same machine.
    # Full precision where it runs well: a GPU (or Apple's), or any machine for a small embedder.
    # A full-precision LLM on a CPU runs in fp32: twice the catalog's bf16 memory, a fraction of
    # a GGUF's speed; the 8-bit GGUF is the accuracy pick there.
    full = ("hf",) if role == "embedding" or tier != "cpu" else ()
    formats = tuple(dict.fromkeys((*(("api",) if cloud else ()), *full, *efficient)))
    if tier == "large-gpu":
        why = "accuracy on a large GPU -> full precision (bf16/fp16 torch), else the highest precision that fits"
    elif cloud:
        why = "accuracy with cloud allowed -> API model"
    else:
        why = f"accuracy on {tier} -> the best model that fits, at the highest precision that fits"
    return formats, why


def cpu_params_cap(hw: Hardware) -> float:
    """Largest instruct model (billions of parameters) worth running on CPU only.

    A heuristic, not a measurement: CPU decoding is memory-bandwidth bound and a 4-bit 7B model
    already needs ~8 physical cores for a usable few tokens/s, so allow ~1B parameters per physical
    core (hyper-threads add no arithmetic units), min 3.5B.
    """
    return max(3.5, float(hw.compute_cores))


def candidates(role: str, formats: tuple[str, ...], priority: str, cap: float | None) -> list[CatalogModel]:
    """Catalog models for `role` in `formats`, best first: quality, then (accuracy) precision or
    (otherwise) the smaller model."""
    models = [m for m in load_catalog() if m.purpose == role and m.format in formats]
    if cap is not None:
        models = [m for m in models if m.params_b <= cap]

    def rank(m: CatalogModel):
        bits = PRECISION_BITS.get(m.quantization, 4)
        if priority == "accuracy":
            return (-m.quality, -bits, formats.index(m.format), m.memory_gb)
        return (-m.quality, formats.index(m.format), m.memory_gb)

    return sorted(models, key=rank)


def place(options: dict[str, list[CatalogModel]], pools: dict[str, Pool], tier: str) -> dict:
    """The best combination that fits every pool: roles in PLACEMENT_ORDER, each its best option.

    A combination with a model for every role wins over one that leaves a role empty.
    """
    roles = sorted(options, key=PLACEMENT_ORDER.index)
    for allow_empty in (False, True):
        lists = [options[role] + ([None] if allow_empty else []) for role in roles]
        for combination in itertools.product(*lists):
            used: dict[str, float] = {}
            for model in filter(None, combination):
                pool = charged_pool(model, tier)
                if pool:
                    used[pool] = used.get(pool, 0.0) + model.memory_gb
            if all(used_gb <= pools[name].budget_gb for name, used_gb in used.items()):
                return dict(zip(roles, combination, strict=True))
    return dict.fromkeys(roles)


def recommend(purpose: str, priority: str, hw: Hardware) -> Decision:
    if purpose not in PURPOSE_ROLES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSE_ROLES)}, not {purpose!r}")
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
    roles = PURPOSE_ROLES[purpose]
    tier = hardware_tier(hw)
    pools = memory_pools(hw, tier)
    steps = [Step(1, f"Purpose: {purpose}", [_purpose_line(purpose)]), _hardware_step(hw, tier, pools)]

    step3 = Step(3, "Priority", [])
    if priority == "auto":
        priority, why = default_priority(tier, hw.cloud_allowed)
        step3.lines.append(f"auto -> {priority} ({why})")
    step3.title = f"Priority: {priority}"
    plan = {role: formats_for(role, priority, tier, hw.cloud_allowed) for role in roles}
    step3.lines.extend(f"{role}: {why} [{'/'.join(formats)}]" for role, (formats, why) in plan.items())
    steps.append(step3)

    step4 = Step(4, "Combine and fit memory")
    options = {}
    for role in roles:
        cap = cpu_params_cap(hw) if tier == "cpu" and role != "embedding" else None
        if cap is not None:
            cores = f"{hw.compute_cores} physical cores"
            step4.lines.append(f"CPU only with {cores}: {role} models up to {cap:.1f}B parameters stay usable")
        options[role] = candidates(role, plan[role][0], priority, cap)
    placed = place(options, pools, tier)
    placed_first = sorted(roles, key=PLACEMENT_ORDER.index)
    made = {role: _pick(role, placed[role], options[role], plan[role][0], pools, tier) for role in placed_first}
    picks = [made[role] for role in roles]
    step4.lines.extend(_pick_line(p) for p in picks)
    step4.lines.extend(_pool_lines(hw, pools))
    steps.append(step4)
    main = next(iter(pools.values()))
    return Decision(purpose, priority, tier, hw, main.budget_gb, steps, picks, pools)


def _pick(role, model, options, formats, pools: dict[str, Pool], tier: str) -> Pick:
    where = "/".join(formats)
    if model is None:
        if not options:
            return Pick(role, None, formats, f"no {role} model in the catalog has format {where}")
        smallest = min(options, key=lambda m: m.memory_gb)
        pool = pools[charged_pool(smallest, tier) or next(iter(pools))]
        left = pool.budget_gb - pool.used_gb
        return Pick(
            role,
            None,
            formats,
            f"nothing fits: the smallest {role} model ({smallest.key}) needs {smallest.memory_gb:.1f} GB, "
            f"{left:.1f} GB left",
        )
    pool_name = charged_pool(model, tier)
    if pool_name is None:
        return Pick(role, model, formats, f"best {role} model in {where}: an API, no local memory", None)
    pool = pools[pool_name]
    pool.used_gb += model.memory_gb
    reason = (
        f"best {role} model in {where} that fits ({model.memory_gb:.1f} GB of {pool.budget_gb:.1f} GB {pool_name}"
        f" budget, {pool.budget_gb - pool.used_gb:.1f} GB left)"
    )
    return Pick(role, model, formats, reason, pool_name)


def _pick_line(p: Pick) -> str:
    if p.model is None:
        return f"{p.role}: none - {p.reason}"
    m = p.model
    device = {"gpu": "GPU", "ram": "CPU", "unified": "Apple GPU", None: "remote"}[p.pool]
    return f"{p.role}: {m.key} ({m.model_ref}, {m.format} {m.quantization}) via {m.backend} on {device} - {p.reason}"


def _pool_lines(hw: Hardware, pools: dict[str, Pool]) -> list[str]:
    lines = [f"{pool.name}: {pool.used_gb:.1f} GB of {pool.budget_gb:.1f} GB budget" for pool in pools.values()]
    free_now = {"ram": hw.available_ram_gb, "unified": hw.available_ram_gb}
    if hw.gpus:
        free_now["gpu"] = max(g.usable_gb for g in hw.gpus)
    for pool in pools.values():
        if pool.used_gb > free_now.get(pool.name, pool.used_gb):
            lines.append(
                f"warning: only {free_now[pool.name]:.1f} GB {pool.name} is free right now; the picks need "
                f"{pool.used_gb:.1f} GB (close other programs, or choose smaller models)"
            )
    return lines


def _hardware_step(hw: Hardware, tier: str, pools: dict[str, Pool]) -> Step:
    detected = f"detected: {hw.describe()}"
    if hw.overridden:
        detected += f" (from settings: {', '.join(hw.overridden)})"
    lines = [detected, _tier_line(tier)]
    lines.extend(f"memory budget ({pool.name}): {pool.budget_gb:.1f} GB = {pool.note}" for pool in pools.values())
    return Step(2, f"Hardware: {tier}", lines)


def _purpose_line(purpose: str) -> str:
    return {
        "rag": "RAG -> an embedding model for retrieval + an instruct model for the answer",
        "chat": "chat / assistant / QA -> an instruct model",
        "search": "search / recommendation -> an embedding model",
        "completion": "general LLM (text completion) -> a base model, no chat template",
    }[purpose]


def _tier_line(tier: str) -> str:
    return {
        "apple": "Apple Silicon (macOS + arm64) -> MLX models",
        "large-gpu": f"CUDA GPU with >= {LARGE_GPU_GB:.0f} GB -> full precision (fp16/bf16) models",
        "small-gpu": (
            f"CUDA GPU under {LARGE_GPU_GB:.0f} GB -> quantized models (GGUF offloaded to the GPU with a CUDA "
            "build of llama-cpp-python; int8 ONNX on the CPU)"
        ),
        "cpu": "CPU only -> quantized models (GGUF for llama.cpp, int8 ONNX for sentence-transformers)",
    }[tier]
