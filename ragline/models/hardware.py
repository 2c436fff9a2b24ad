"""What this machine (or the deploy target described in settings) can run.

Detection is cheap and import-free: `nvidia-smi` for CUDA GPUs (no torch import), psutil (else
sysconf and /proc/meminfo, or sysctl/vm_stat on macOS) for memory. It runs on Linux, macOS and
Windows: every platform-specific call has a fallback. Every field can be overridden in settings
(`[hardware]`), for tests and for deploy targets that differ from the machine running the CLI.
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
    cores: int  # logical CPUs this process may use
    gpus: tuple[Gpu, ...] = ()
    cloud_allowed: bool = False
    overridden: tuple[str, ...] = field(default=())
    physical_cores: int | None = None  # None: same as cores

    @property
    def compute_cores(self) -> int:
        """Physical cores: what CPU inference scales with (hyper-threads share the arithmetic units)."""
        return self.physical_cores or self.cores

    @property
    def apple_silicon(self) -> bool:
        return self.os == "darwin" and self.arch in ("arm64", "aarch64")

    @property
    def best_gpu(self) -> Gpu | None:
        return max(self.gpus, key=lambda g: g.usable_gb, default=None)

    def describe(self) -> str:
        parts = [f"{self.os} {self.arch}" + (" (Apple Silicon)" if self.apple_silicon else "")]
        cores = f"{self.cores} CPU cores"
        if self.compute_cores != self.cores:
            cores += f" ({self.compute_cores} physical)"
        parts.append(cores)
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
        try:
            name, total_mib, free_mib = (part.strip() for part in line.rsplit(",", 2))
            gpus.append(Gpu(name, float(total_mib) / 1024, float(free_mib) / 1024))
        except ValueError:  # "[N/A]" (MIG, some drivers): a GPU whose memory is unknown is not budgeted
            continue
    return tuple(gpus)


def usable_cpus() -> int:
    """Logical CPUs this process may run on: its affinity where the OS has one (Linux), else all."""
    affinity = getattr(os, "sched_getaffinity", None)  # absent on macOS and Windows
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores among the usable CPUs (the logical count scaled by cores per thread)."""
    usable, logical = usable_cpus(), os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # psutil missing (it is not a ragline dependency), or no answer on this OS
        physical = None
    if not physical:
        physical = _sysctl_int("hw.physicalcpu") or logical
    return max(1, min(usable, round(usable * physical / logical)))


def _sysctl_int(name: str) -> int | None:
    """A macOS/BSD sysctl number, or None elsewhere."""
    sysctl = shutil.which("sysctl")
    if not sysctl:
        return None
    try:
        done = subprocess.run([sysctl, "-n", name], capture_output=True, text=True, timeout=5)
        return int(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _memory_gb() -> tuple[float, float]:
    """(total, available) RAM in GB on any OS."""
    try:
        import psutil

        memory = psutil.virtual_memory()
        return memory.total / GIB, memory.available / GIB
    except Exception:  # psutil missing: the platform's own interfaces
        pass
    total = _total_memory_bytes() / GIB
    available = _linux_available_bytes() or _macos_available_bytes()
    return total, (available / GIB if available else total)


def _total_memory_bytes() -> float:
    sysconf = getattr(os, "sysconf", None)  # absent on Windows
    if sysconf is not None:
        try:
            return float(sysconf("SC_PAGE_SIZE") * sysconf("SC_PHYS_PAGES"))
        except (OSError, ValueError):
            pass
    return float(_sysctl_int("hw.memsize") or 0)


def _linux_available_bytes() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024.0
    except OSError:
        pass
    return None


def _macos_available_bytes() -> float | None:
    """Free + inactive + speculative pages from vm_stat: what macOS hands out without swapping."""
    vm_stat = shutil.which("vm_stat")
    if not vm_stat:
        return None
    try:
        text = subprocess.run([vm_stat], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_vm_stat(text)


def parse_vm_stat(text: str) -> float | None:
    lines = text.splitlines()
    if not lines or "page size of" not in lines[0]:
        return None
    page = int(lines[0].split("page size of")[1].split()[0])
    counts = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if value.strip().rstrip(".").isdigit():
            counts[name.strip()] = int(value.strip().rstrip("."))
    pages = sum(counts.get(f"Pages {kind}", 0) for kind in ("free", "inactive", "speculative"))
    return float(pages * page) if pages else None


def detect_hardware() -> Hardware:
    total, available = _memory_gb()
    return Hardware(
        os=platform.system().lower(),
        arch=_normalise_arch(platform.machine()),
        ram_gb=total,
        available_ram_gb=available,
        cores=usable_cpus(),
        gpus=detect_gpus(),
        physical_cores=physical_cores(),
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
    for name in ("os", "arch", "cores", "physical_cores"):
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
    overridden = tuple(sorted(changes))
    if "cores" in changes and "physical_cores" not in changes:
        changes["physical_cores"] = None  # a described machine's cores are its physical cores
    return replace(detected, **changes, overridden=overridden)


def hardware_from_settings(settings: RaglineSettings) -> Hardware:
    return apply_overrides(detect_hardware(), settings.hardware)
