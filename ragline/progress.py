"""A process-local progress hook: the CLI installs a bar, flows report files done."""

from __future__ import annotations

from collections.abc import Callable

ProgressHook = Callable[[int, int], None]  # (files done, files total)
_hook: ProgressHook | None = None


def set_hook(hook: ProgressHook | None) -> None:
    global _hook
    _hook = hook


def report(done: int, total: int) -> None:
    if _hook is not None:
        _hook(done, total)
