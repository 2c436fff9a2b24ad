"""Run the chat API + MCP app (deployments/chat_api.py) under uvicorn, next to `ragline serve`'s runner.

uvicorn runs in a thread with its own event loop: it then leaves the process's signal handling to
`ragline serve` (uvicorn only captures signals on the main thread), and slow request handling
cannot delay the Prefect runner's polling. The socket is bound here first, so a busy port is a
clear error before anything is announced as ready.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import uvicorn

from ragline.deployments.answer_service import AnswerService
from ragline.deployments.chat_api import create_app
from ragline.deployments.mcp_server import build_mcp_server
from ragline.deployments.recording import Recorder
from ragline.settings import RaglineSettings

STARTUP_TIMEOUT_S = 60.0
logger = logging.getLogger("ragline.serve")


class HttpServerError(RuntimeError):
    """The HTTP front could not start; the message says how to fix it."""


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise HttpServerError(
            f"cannot listen on {host}:{port} for the chat API ({exc.strerror}): set serve.port "
            "(RAGLINE_SERVE__PORT) to a free port, or serve.enabled = false to run without it"
        ) from None
    sock.listen(128)
    return sock


class HttpServer:
    def __init__(self, settings: RaglineSettings):
        s = settings.serve
        self.url = f"http://{s.host}:{s.port}"
        self.service = AnswerService(settings, Recorder(enabled=s.record_runs))
        app = create_app(self.service, build_mcp_server(self.service))
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(config)
        self.socket = bind(s.host, s.port)
        self.thread = threading.Thread(target=self._run, name="chat-api", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.socket]))

    def start(self) -> HttpServer:
        self.service.warm_up_generation()
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise HttpServerError(f"the chat API on {self.url} did not start; see the log above")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Finish open requests (up to the grace period), then write the pending Prefect records."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()
        self.service.close()


def start_http_server(settings: RaglineSettings) -> HttpServer:
    return HttpServer(settings).start()
