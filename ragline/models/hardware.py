"""What this machine (or the deploy target described in settings) can run.

Detection is cheap and import-free: `nvidia-smi` for CUDA GPUs (no torch import), sysconf and
/proc/meminfo for memory. Every field can be overridden in settings (`[hardware]`), for tests and
for deploy targets that differ from the machine running the CLI.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field, replace

from ragline.settings import RaglineSettings
from ragline.settings.config import HardwareSettings

GIB = 1024**3


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gb: float
    free_gb: float | None = None

    @property
    def usable_gb(self) -> float:
        return self.free_gb if self.free_gb is not None else self.memory_gb


@dataclass(frozen=True)
class Hardware:
    os: str  # "linux", "darwin", "windows"
    arch: str  # "x86_64", "arm64", ...
    ram_gb: float
    available_ram_gb: float
    cores: int
    gpus: tuple[Gpu, ...] = ()
    cloud_allowed: bool = False
    overridden: tuple[str, ...] = field(default=())

    @property
    def apple_silicon(self) -> bool:
        return self.os == "darwin" and self.arch in ("arm64", "aarch64")

    @property
    def best_gpu(self) -> Gpu | None:
        return max(self.gpus, key=lambda g: g.usable_gb, default=None)

    def describe(self) -> str:
        parts = [f"{self.os} {self.arch}" + (" (Apple Silicon)" if self.apple_silicon else "")]
        parts.append(f"{self.cores} CPU cores")
        parts.append(f"{self.ram_gb:.1f} GB RAM ({self.available_ram_gb:.1f} GB available)")
        if self.gpus:
            parts.extend(f"GPU {g.name} {g.memory_gb:.0f} GB ({g.usable_gb:.1f} GB free)" for g in self.gpus)
        else:
            parts.append("no CUDA GPU")
        parts.append("cloud API allowed" if self.cloud_allowed else "cloud API not allowed")
        return ", ".join(parts)


def _normalise_arch(machine: str) -> str:
    machine = machine.lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def detect_gpus() -> tuple[Gpu, ...]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ()
    try:
        result = subprocess.run(
            [smi, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    gpus = []
    for line in result.stdout.strip().splitlines() if result.returncode == 0 else []:
        name, total_mib, free_mib = (part.strip() for part in line.rsplit(",", 2))
        gpus.append(Gpu(name, float(total_mib) / 1024, float(free_mib) / 1024))
    return tuple(gpus)


def _memory_gb() -> tuple[float, float]:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    available = total
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024 / GIB
    except OSError:  # macOS has no /proc; total is the best cheap estimate there
        pass
    return total, available


def detect_hardware() -> Hardware:
    total, available = _memory_gb()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Hardware(
        os=platform.system().lower(),
        arch=_normalise_arch(platform.machine()),
        ram_gb=total,
        available_ram_gb=available,
        cores=cores,
        gpus=detect_gpus(),
    )


@functools.cache
def detected_hardware() -> Hardware:
    """Detection once per process, for decisions that use only what does not change (`auto`
    resolves on every spec built, and nvidia-smi takes a noticeable part of a second)."""
    return detect_hardware()


def apply_overrides(detected: Hardware, overrides: HardwareSettings | None) -> Hardware:
    """Settings win over detection; `overrides` is settings.hardware."""
    if overrides is None:
        return detected
    changes: dict = {}
    for name in ("os", "arch", "cores"):
        if getattr(overrides, name, None) is not None:
            changes[name] = getattr(overrides, name)
    if getattr(overrides, "ram_gb", None) is not None:
        # A described target is assumed idle: all its RAM is available to the models.
        changes["ram_gb"] = changes["available_ram_gb"] = float(overrides.ram_gb)
    if getattr(overrides, "gpus", None) is not None:
        changes["gpus"] = tuple(Gpu(g.name, g.memory_gb, g.free_gb) for g in overrides.gpus)
    if getattr(overrides, "cloud_allowed", False):
        changes["cloud_allowed"] = True
    if "arch" in changes:
        changes["arch"] = _normalise_arch(changes["arch"])
    return replace(detected, **changes, overridden=tuple(sorted(changes)))


def hardware_from_settings(settings: RaglineSettings) -> Hardware:
    return apply_overrides(detect_hardware(), settings.hardware)
