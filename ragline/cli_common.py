"""Helpers every `ragline` sub-command shares: one-line errors, settings, the Prefect API."""

from __future__ import annotations

import typer


def fail(message: str) -> None:
    """Print a user-fixable error as one line (no traceback) and exit with status 1."""
    typer.secho(f"error: {' '.join(message.split())}", err=True, fg="red")
    raise typer.Exit(code=1)


def load_settings():
    from settings import get_settings

    try:
        return get_settings()
    except Exception as exc:  # pydantic validation errors name the bad setting
        fail(f"invalid settings: {exc}")


def connect_prefect(settings) -> str:
    from flows.runtime import ensure_prefect_api

    try:
        return ensure_prefect_api(settings)
    except RuntimeError as exc:
        fail(str(exc))
