"""The MCP server: ragline's knowledge base for agents, over streamable HTTP (in `ragline serve`,
at /mcp) or stdio (`ragline mcp`).

Tools:
- `search`: the passages that match a query, best first, with sources (filters: sources, file types).
- `ask`: an answer with numbered citations (the same path as `ragline ask` and the chat API).
Resources: `ragline://collections` (the list) and `ragline://collections/{name}` (one collection:
its model name for the chat API, chunk count, embedding model).

Each tool call is admitted like a chat request (bounded queue) and recorded as a Prefect run.
"""

from __future__ import annotations

import json
import signal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from ragline.deployments.answer_service import AnswerService, AskRequest, QueueFull, search_filter
from ragline.records import Citation as Passage  # a numbered passage with its source: one shape for both
from ragline.settings import RaglineSettings

MAX_SEARCH_K = 50
STDIO_DRAIN_S = 10.0
INSTRUCTIONS = (
    "ragline answers questions from an ingested document collection. Use `search` to read the "
    "matching passages with their sources, or `ask` for a generated answer citing them as [n]. "
    "Collections are listed at ragline://collections."
)


class SearchResult(BaseModel):
    request_id: str  # the Prefect run recording this call is named mcp-search-<request_id>
    passages: list[Passage]


class AskResult(BaseModel):
    request_id: str  # the Prefect run recording this call is named mcp-ask-<request_id>
    answer: str
    citations: list[Passage]


def build_mcp_server(service: AnswerService) -> MCPServer:
    server = MCPServer("ragline", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool()
    async def search(
        query: str,
        k: int = 5,
        collection: str | None = None,
        sources: list[str] | None = None,
        file_types: list[str] | None = None,
    ) -> SearchResult:
        """Passages from the knowledge base that match `query`, best first, each with its source file,
        page and score. `sources` limits the search to these source paths, `file_types` to these
        file types (e.g. ["pdf"]); `collection` defaults to the configured one."""
        try:
            with service.admission.admitted():
                k = max(1, min(k, MAX_SEARCH_K))
                request_id, found = await service.search(query, k, collection, search_filter(sources, file_types))
        except (QueueFull, LookupError, ValueError) as exc:
            raise ToolError(str(exc)) from exc
        return SearchResult(request_id=request_id, passages=found)

    @server.tool()
    async def ask(
        question: str,
        collection: str | None = None,
        k: int | None = None,
        sources: list[str] | None = None,
        file_types: list[str] | None = None,
    ) -> AskResult:
        """Answer `question` from the knowledge base; the answer cites passages as [n], listed in
        `citations` with their source file, page and text."""
        request = AskRequest(question, [], collection, k, sources, file_types, kind="mcp-ask")
        try:
            with service.admission.admitted():
                served = await service.answer(request)
        except (QueueFull, LookupError, ValueError) as exc:
            raise ToolError(str(exc)) from exc
        citations = [c.model_dump() for c in served.answer.citations]
        return AskResult(request_id=served.request_id, answer=served.answer.answer, citations=citations)

    @server.resource("ragline://collections", name="collections", mime_type="application/json")
    def collections() -> str:
        """The collections ragline can answer from."""
        return json.dumps([service.collection_details(name) for name in service.collections()])

    @server.resource("ragline://collections/{name}", name="collection", mime_type="application/json")
    def collection(name: str) -> str:
        """One collection: chunk count, embedding model, and its model name for the chat API."""
        details = service.collection_details(name)
        if details is None:
            raise ValueError(f"no collection {name!r}: read ragline://collections for the list")
        return json.dumps(details)

    return server


def run_stdio(settings: RaglineSettings) -> None:
    """`ragline mcp`: the same server over stdin/stdout, answering in this process."""
    import anyio

    from ragline.deployments.recording import Recorder

    service = AnswerService(settings, Recorder(enabled=settings.serve.record_runs))
    try:
        anyio.run(build_mcp_server(service).run_stdio_async)
    finally:
        # mcp's stdio client closes stdin, SIGTERMs 2 s later and SIGKILLs 2 s after that: ignore
        # the SIGTERM while the last calls' Prefect runs are written, so they are not lost.
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            service.close(drain_s=STDIO_DRAIN_S)
        finally:
            signal.signal(signal.SIGTERM, previous)
