"""`ragline mcp`: the MCP server over stdio, for agents that start their tools as subprocesses.

Registered on the main app in ragline/cli/app.py. stdout carries the MCP protocol only: messages
go to stderr. When `ragline serve` owns the store, agents should use its streamable HTTP endpoint.
"""

from __future__ import annotations

from ragline.cli.common import connect_prefect, fail, load_settings


def mcp() -> None:
    """Serve the knowledge base to an MCP client over stdio (tools `search`, `ask`; collections as resources)."""
    from ragline.store.ownership import current_owner

    settings = load_settings()
    if current_owner(settings) is not None:
        s = settings.serve
        fail(
            f"`ragline serve` owns the store at {settings.store_path}: point the MCP client at its "
            f"streamable HTTP endpoint http://{s.host}:{s.port}/mcp instead of `ragline mcp`"
        )
    # Each tool call is recorded as a Prefect run. The store is not claimed like `ragline serve`
    # does: that would route other commands to a query worker this process does not run.
    connect_prefect(settings)
    from ragline.deployments.mcp_server import run_stdio
    from ragline.store import close_stores

    try:
        run_stdio(settings)
    finally:
        close_stores()
