"""Running a `create_app` app under uvicorn, with a graceful shutdown.

On SIGTERM or SIGINT the server drains: new rerank requests get 503 (and
`/readyz` turns 503, so a load balancer stops sending), requests already
received are scored at once (the batcher stops waiting for company), uvicorn
closes the listening socket (later connections are refused), waits for the
in-flight requests to be answered, then stops the scoring thread. A second
SIGINT forces the exit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from types import FrameType
from typing import TYPE_CHECKING

from langchain_ce_rerank.optional import require

if TYPE_CHECKING:
    from fastapi import FastAPI

    from langchain_ce_rerank.serving.app import ServeState

__all__ = ["bind_socket", "serve"]

logger = logging.getLogger(__name__)


def _require_uvicorn() -> None:
    require("uvicorn", extra="serve", feature="ce-rerank serve")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (port 0 picks a free one).

    Raises:
        OSError: The address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


def serve(
    app: FastAPI,
    sock: socket.socket,
    *,
    log_level: str = "info",
    graceful_timeout: float = 30.0,
) -> int:
    """Serve `app` on `sock` until SIGTERM/SIGINT; returns the exit status.

    Args:
        app: From `create_app`.
        sock: From `bind_socket`.
        log_level: uvicorn's log level (`debug` also logs each request).
        graceful_timeout: Seconds to wait for in-flight requests at shutdown.

    Returns:
        0 after a graceful shutdown, 1 if the model failed to load.
    """
    _require_uvicorn()
    import uvicorn

    state: ServeState = app.state.ce_rerank

    class DrainingServer(uvicorn.Server):
        loop: asyncio.AbstractEventLoop | None = None
        load_failed = False

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            draining = not self.should_exit
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal after shutting down; a graceful
            # shutdown is a normal end, so exit with status 0 instead.
            self._captured_signals.clear()
            if draining and self.loop is not None:
                logger.info("Shutting down: finishing in-flight requests.")
                self.loop.call_soon_threadsafe(state.drain)

        def stop_after_load_failure(self, err: BaseException) -> None:
            self.load_failed = True
            if self.loop is not None:
                self.loop.call_soon_threadsafe(setattr, self, "should_exit", True)

    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=None,
        access_log=log_level == "debug",
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(graceful_timeout),
    )
    server = DrainingServer(config)
    state.batcher.on_load_error = server.stop_after_load_failure
    server.run(sockets=[sock])
    return 1 if server.load_failed else 0
