"""Portability: the code paths that macOS and Windows take, run here with Linux-only calls removed."""

from __future__ import annotations

import pytest


def test_hardware_detection_without_linux_only_calls(monkeypatch):
    import builtins
    import os
    import sys

    from ragline.models import hardware

    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    monkeypatch.delattr(os, "sysconf", raising=False)  # Windows
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil now fails
    monkeypatch.setattr(builtins, "open", no_proc)
    gib = hardware.GIB
    monkeypatch.setattr(hardware, "_sysctl_int", lambda name: {"hw.memsize": 16 * gib, "hw.physicalcpu": 1}.get(name))
    monkeypatch.setattr(hardware, "_macos_available_bytes", lambda: 6.0 * gib)
    detected = hardware.detect_hardware()
    assert detected.cores == (os.cpu_count() or 1) and detected.compute_cores >= 1
    assert (detected.ram_gb, detected.available_ram_gb) == (16, 6)
    assert hardware.usable_cpus() == (os.cpu_count() or 1)


def test_macos_available_memory_is_free_plus_inactive_pages():
    from ragline.models.hardware import parse_vm_stat

    vm_stat = (
        "Mach Virtual Memory Statistics: (page size of 16384 bytes)\n"
        "Pages free:                               10000.\n"
        "Pages active:                            500000.\n"
        "Pages inactive:                           20000.\n"
        "Pages speculative:                         2000.\n"
    )
    assert parse_vm_stat(vm_stat) == 32000 * 16384
    assert parse_vm_stat("not vm_stat output") is None


def test_thread_counts_without_sched_getaffinity(monkeypatch):
    import os

    from ragline.embedders.gguf import gguf_threads
    from ragline.generators.llama_cpp import _default_threads

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.delenv("RAGLINE_GGUF_THREADS", raising=False)
    assert _default_threads() == gguf_threads() == (os.cpu_count() or 1)


def test_peak_memory_units_per_platform(monkeypatch):
    import resource

    from ragline.evaluation.model_bench import peak_rss_mb

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert peak_rss_mb("linux") == pytest.approx(peak / 1024, rel=0.05)  # KiB
    assert peak_rss_mb("darwin") == pytest.approx(peak / 2**20, rel=0.05)  # bytes


def test_file_locks_exclude_a_second_holder_and_report_a_free_lock(tmp_path):
    """The ingest and serve locks go through ragline.file_locks (no module-level fcntl import, so the
    CLI loads on Windows); on this platform the lock must still exclude a second open file."""
    from ragline import file_locks

    path = tmp_path / "x.lock"
    with open(path, "a+") as first, open(path, "a+") as second:
        assert file_locks.try_lock_exclusive(first)
        assert not file_locks.try_lock_exclusive(second)
        assert not file_locks.try_lock_shared(second)
        file_locks.unlock(first)
        assert file_locks.try_lock_shared(second)


def test_the_cli_and_locking_modules_do_not_import_fcntl_themselves():
    import ast
    from pathlib import Path

    import ragline

    root = Path(ragline.__file__).parent
    for module in ("ingestion/locking.py", "store/ownership.py", "cli/app.py", "cli/common.py"):
        tree = ast.parse((root / module).read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "fcntl" not in names, module
