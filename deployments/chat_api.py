"""The OpenAI-compatible HTTP API of `ragline serve` (and the MCP endpoint mounted next to it).

- `GET /v1/models`: one model per collection, `ragline:<collection>` (plus `ragline`, the default).
- `POST /v1/chat/completions`: the last user message is the question, earlier turns make a
  follow-up standalone; `stream: true` answers as server-sent events (generated tokens as they
  come, then the checked answer if the check changed it). The answer text ends with
  its numbered sources, and the response carries them structured in `citations` (clients that do
  not know the field ignore it) and the rest in `ragline` (the question answered, timings).
  Optional extras (`extra_body` in the openai client): `k`, `sources`, `file_types`.
- `POST /mcp`: the MCP server (deployments/mcp_server.py), streamable HTTP.
- `GET /health`: no key needed.

With `serve.api_key` set, every other path needs `Authorization: Bearer <key>` (401 otherwise).
A full service answers 503 with Retry-After (the openai client retries those by itself).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from ragline.conversation import split_conversation
from ragline.deployments.answer_service import RETRY_AFTER_S, AnswerService, AskRequest, QueueFull, ServedAnswer
from ragline.grounding import CITATION_MARK
from ragline.records import Answer

MODEL_PREFIX = "ragline"
OPEN_PATHS = ("/health",)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = MODEL_PREFIX
    messages: list[ChatMessage]
    stream: bool = False
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    # ragline's own options, sent by OpenAI clients through `extra_body`.
    k: int | None = None
    sources: list[str] | None = None
    file_types: list[str] | None = None


def error(status: int, message: str, code: str, headers: dict | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "code": code, "param": None}}
    return JSONResponse(body, status_code=status, headers=headers)


class ApiKeyMiddleware:
    """Pure ASGI, so it also guards the mounted MCP app (and streaming responses stay untouched)."""

    def __init__(self, app, api_key: str):
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        sent = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(sent, self.expected):
            return await self.app(scope, receive, send)
        response = error(
            401,
            "missing or wrong API key: send `Authorization: Bearer <serve.api_key>` (the openai client's api_key)",
            "invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


def model_name(collection: str) -> str:
    return f"{MODEL_PREFIX}:{collection}"


def collection_of(model: str, service: AnswerService) -> str | None:
    """`ragline:<collection>` -> the collection; `ragline` -> the default; anything else -> None."""
    if model in ("", MODEL_PREFIX):
        return service.settings.store.collection
    prefix, _, name = model.partition(":")
    return name if prefix == MODEL_PREFIX and name in service.collections() else None


def sources_block(citations) -> str:
    if not citations:
        return ""
    lines = [f"[{c.n}] {c.label}" for c in citations]
    return "\n\nSources:\n" + "\n".join(lines)


def after_streamed_tokens(streamed: str, answer: Answer) -> str:
    """What a stream sends after its generated tokens: nothing more when they are the checked
    answer, else the checked answer with why it differs. A client cannot take back text it has
    shown, so the check's verdict comes after it (`ragline ask` replaces its live view instead)."""
    if not streamed.strip():
        return answer.answer  # nothing was streamed: an extractive (or strict) answer comes whole
    if comparable_text(streamed) == comparable_text(answer.answer):
        # The check only placed or removed citation numbers: the sources block lists the real ones.
        invalid = answer.invalid_citations
        return f"\n\n(Citations {invalid} name no passage: ignore them.)" if invalid else ""
    if answer.mode == "extractive-fallback":
        why = "The sources do not support the generated text above. From the sources:"
    else:
        why = "Checked against the sources:"
    return f"\n\n---\n{why}\n{answer.answer}"


def comparable_text(text: str) -> str:
    """The text with citation numbers and all whitespace taken out, for comparing two versions."""
    return "".join(CITATION_MARK.sub("", text).split())


def extras(served: ServedAnswer) -> dict:
    """The structured fields next to the OpenAI ones: clients that do not know them ignore them."""
    retrieved = [{"source": h.payload.get("source", ""), "chunk_id": h.chunk_id, "score": h.score} for h in served.hits]
    return {
        "citations": [c.model_dump() for c in served.answer.citations],
        "ragline": {
            "request_id": served.request_id,
            "question": served.question,
            # The checked answer (what a non-streamed reply's text is) and how it was made.
            "answer": served.answer.answer,
            "mode": served.answer.mode,
            "rewrite": served.rewrite,
            "collection": served.collection,
            "retrieved": retrieved,
            "timings": served.timings,
        },
    }


def ask_request(body: ChatRequest, collection: str) -> AskRequest:
    question, history = split_conversation([m.model_dump() for m in body.messages])
    return AskRequest(
        question=question,
        history=history,
        collection=collection,
        k=body.k,
        sources=body.sources,
        file_types=body.file_types,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
    )


def completion(served: ServedAnswer, model: str) -> dict:
    text = served.answer.answer + sources_block(served.answer.citations)
    return {
        "id": f"chatcmpl-{served.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        **extras(served),
    }


def chunk(stream_id: str, model: str, delta: dict, finish: str | None = None, **extra) -> bytes:
    body = {
        "id": stream_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def stream_answer(service: AnswerService, request: AskRequest, model: str) -> StreamingResponse:
    """SSE: the role, the answer as it is generated, the sources, then a final chunk with citations."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()
    done = object()

    # Generated tokens are streamed as they come; with answer.strict the checked answer may drop
    # sentences, so it is sent whole at the end (as is an extractive answer, which has no tokens).
    def on_delta(piece: str) -> None:
        loop.call_soon_threadsafe(pieces.put_nowait, piece)

    streamable = not service.settings.answer.strict

    async def answer_then_leave():
        try:
            return await service.answer(request, on_delta if streamable else None, cancelled)
        finally:
            service.admission.leave()
            pieces.put_nowait(done)

    task = asyncio.create_task(answer_then_leave())
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # read in events(), or dropped
    stream_id = f"chatcmpl-{request.request_id}"

    async def events():
        try:
            yield chunk(stream_id, model, {"role": "assistant", "content": ""})
            streamed: list[str] = []
            while (piece := await pieces.get()) is not done:
                piece = piece if streamed else piece.lstrip()  # the answer is stripped, as `ragline ask` does
                if piece:
                    streamed.append(piece)
                    yield chunk(stream_id, model, {"content": piece})
            try:
                served = task.result()
            except Exception as exc:  # headers are sent: the error travels as an event
                yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error'}})}\n\n".encode()
                return
            rest = after_streamed_tokens("".join(streamed), served.answer)
            yield chunk(stream_id, model, {"content": rest + sources_block(served.answer.citations)})
            yield chunk(stream_id, model, {}, "stop", **extras(served))
            yield b"data: [DONE]\n\n"
        finally:
            cancelled.set()  # no-op when finished; stops generation when the client went away

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def add_routes(app: FastAPI, service: AnswerService) -> None:
    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "queued": service.admission.active, "recorder": service.recorder.stats()}

    @app.get("/v1/models")
    async def models() -> dict:
        names = await asyncio.to_thread(service.collections)
        listed = [MODEL_PREFIX] + [model_name(n) for n in names]
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": "ragline"} for m in listed],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest):
        collection = await asyncio.to_thread(collection_of, body.model, service)
        if collection is None:
            return error(
                404, f"no model {body.model!r}: GET /v1/models lists ragline:<collection> models", "model_not_found"
            )
        try:
            request = ask_request(body, collection)
            service.check(request.question, request.k)
        except ValueError as exc:
            return error(400, str(exc), "invalid_request")
        try:
            service.admission.enter()
        except QueueFull as exc:
            return error(503, str(exc), "queue_full", headers={"Retry-After": str(RETRY_AFTER_S)})
        if body.stream:
            return stream_answer(service, request, body.model)
        try:
            served = await service.answer(request)
        except LookupError as exc:  # e.g. an empty collection: say how to fill it
            return error(404, str(exc), "collection_empty")
        except Exception as exc:  # the generator or the store failed: an OpenAI-shaped error, not HTML
            return error(500, f"ragline could not answer: {exc}", "answer_failed")
        finally:
            service.admission.leave()
        return completion(served, body.model)


def create_app(service: AnswerService, mcp_server=None) -> FastAPI:
    """The chat API, with the MCP server (an MCPServer) mounted at /mcp when given."""
    mcp_app = mcp_server.streamable_http_app(host=service.settings.serve.host) if mcp_server else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if mcp_app is None:
            yield
            return
        async with mcp_server.session_manager.run():  # the mounted app's own lifespan is not run
            yield

    app = FastAPI(title="ragline", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return error(400, f"invalid request: {exc.errors()[:3]}", "invalid_request")

    add_routes(app, service)
    if mcp_app is not None:
        app.mount("/", mcp_app)  # last: it serves /mcp, everything else 404s there
    api_key = service.settings.serve.api_key
    if api_key is not None and api_key.get_secret_value():
        app.add_middleware(ApiKeyMiddleware, api_key=api_key.get_secret_value())
    return app
