"""`create_app`: the HTTP door to a `Reranker`, speaking Cohere's Rerank API v2.

Routes: `POST /v2/rerank` (Cohere v2, see `schemas.py`), `GET /healthz` (the
process is up), `GET /readyz` (the model is loaded; 503 while it loads, fails
or the server drains) and `GET /metrics` (Prometheus text). With an API key,
`/v2/rerank` and `/metrics` need `Authorization: Bearer <key>`; the health
endpoints stay open. Every error is JSON: `{"message": ...}` (Cohere's shape),
with `errors` naming each bad field (422) or `limit` and `value` (413, and
the 503 of a full queue, whose `Retry-After` says when to come back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.optional import require
from langchain_ce_rerank.serving.batcher import (
    BatcherClosedError,
    DynamicBatcher,
    ModelNotReadyError,
    QueueFullError,
)
from langchain_ce_rerank.serving.metrics import (
    CONTENT_TYPE,
    ServeMetrics,
    require_prometheus,
)
from langchain_ce_rerank.serving.schemas import (
    RerankRequest,
    RerankResponse,
)

# This module is the server itself: importing it means serving, so FastAPI is
# imported here (nothing imports this module until a server is built). The
# check comes first, so a missing fastapi is reported with its extra.
require("fastapi", extra="serve", feature="ce-rerank serve")
from fastapi import FastAPI, Request, Response  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from langchain_ce_rerank.serving.contract import (  # noqa: E402
    CLI_FLAGS,
    RequestContract,
    RequestLimits,
    ServiceUnavailableError,
    answer_rerank,
    error_response,
    no_route,
)

__all__ = ["ServeSettings", "ServeState", "create_app"]

logger = logging.getLogger(__name__)


class ServeSettings(RequestLimits):
    """What the server accepts (`RequestLimits`) and how it batches.

    Example:
        ```python
        from langchain_ce_rerank.serving.app import ServeSettings

        settings = ServeSettings(model_name="my-reranker", max_documents=200)
        print(settings.max_batch_wait_ms, settings.max_batch_pairs)
        ```
    """

    model_name: str
    """The name clients may send as `model`; any other name gets a 404."""

    max_batch_wait_ms: float = Field(default=5.0, ge=0)
    """How long a request may wait for others to share its model call."""

    max_batch_pairs: int = Field(default=256, ge=0)
    """Most (query, document) pairs per model call; 0 scores requests one at a
    time (no batching)."""

    max_queued_pairs: int = Field(default=10_000, ge=0)
    """Most (query, document) pairs waiting for the model; a request that
    would pass it gets 503 with `Retry-After` (the backlog at the measured
    pairs/s). 0 means no limit."""

    use_cache: bool = True
    """Answer repeated (query, document) pairs from the engine's score cache."""


@dataclass
class ServeState:
    """What the routes share; `app.state.ce_rerank` holds it."""

    engine: Reranker
    settings: ServeSettings
    metrics: ServeMetrics
    batcher: DynamicBatcher
    draining: bool = False

    def drain(self) -> None:
        """Refuse new requests with 503 and let queued ones finish now."""
        self.draining = True
        self.batcher.flush()


async def _client_gone(request: Request) -> None:
    """Return once the client disconnects (the body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _score_while_connected(
    state: ServeState, request: Request, body: RerankRequest
) -> list[float] | None:
    """The request's scores, or None if its client left first.

    A client that times out and retries would otherwise leave its first
    request queued, scored for nobody, ahead of the retry.
    """
    scoring = asyncio.ensure_future(
        state.batcher.score(
            body.query, body.documents, body.max_tokens_per_doc, body.instruction
        )
    )
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait({scoring, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        scoring.cancel()
        raise
    finally:
        gone.cancel()
    if scoring.done():
        return scoring.result()
    scoring.cancel()
    try:
        await scoring
    except asyncio.CancelledError:
        # Our own cancel, unless this task itself is being cancelled.
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    return None


def _available(state: ServeState) -> None:
    if state.draining:
        msg = "the server is shutting down; retry on another instance"
        raise ServiceUnavailableError(msg, close=True)
    if not state.batcher.ready.is_set():
        raise ServiceUnavailableError(state.batcher.status_message())


async def _score(
    state: ServeState, request: Request, body: RerankRequest
) -> list[float] | None:
    try:
        return await _score_while_connected(state, request, body)
    except QueueFullError as err:
        raise ServiceUnavailableError(
            str(err), retry_after=err.retry_after, limit=err.limit, value=err.queued
        ) from err
    except (BatcherClosedError, ModelNotReadyError) as err:
        raise ServiceUnavailableError(str(err)) from err


def create_app(engine: Reranker, settings: ServeSettings) -> FastAPI:
    """A FastAPI app that reranks with `engine` (Cohere v2 `POST /v2/rerank`).

    The model loads in the background when the app starts (its lifespan);
    `GET /readyz` answers 503 until then. Concurrent requests are coalesced
    into shared model calls (`DynamicBatcher`) on one scoring thread.

    Args:
        engine: The engine that scores; the app's scoring thread is its only
            caller from then on.
        settings: Limits, batching and the API key.

    Returns:
        The app; `app.state.ce_rerank` is its `ServeState`.

    Raises:
        ImportError: fastapi or prometheus-client is not installed.

    Example:
        ```python
        import asyncio

        import httpx
        from langchain_ce_rerank.engine import Reranker
        from langchain_ce_rerank.serving.app import ServeSettings, create_app


        class Length:
            def score(self, pairs):
                return [float(len(text)) for _, text in pairs]


        app = create_app(Reranker(model=Length()), ServeSettings(model_name="length"))


        async def main():
            async with app.router.lifespan_context(app):
                app.state.ce_rerank.batcher.ready.wait(10)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://x"
                ) as client:
                    body = {"query": "q", "documents": ["a", "abc"]}
                    print((await client.post("/v2/rerank", json=body)).json())


        asyncio.run(main())
        ```
    """
    require_prometheus()
    metrics = ServeMetrics(engine.cache_info)
    batcher = DynamicBatcher(
        engine,
        max_wait_ms=settings.max_batch_wait_ms,
        max_batch_pairs=settings.max_batch_pairs,
        max_queued_pairs=settings.max_queued_pairs,
        use_cache=settings.use_cache,
        metrics=metrics,
    )
    batcher.instruction_parameter = CLI_FLAGS["instruction"]
    metrics.queued_pairs.set_function(batcher.queued_pairs)
    state = ServeState(engine, settings, metrics, batcher)
    contract = RequestContract(settings, settings.model_name, CLI_FLAGS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            state.draining = True
            await asyncio.to_thread(batcher.close)

    app = FastAPI(
        title="ce-rerank",
        summary="A cross-encoder reranker behind Cohere's Rerank API v2.",
        lifespan=lifespan,
    )
    app.state.ce_rerank = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        # Unknown routes and methods answer in the contract's shape, as the
        # Ray Serve door does, not FastAPI's {"detail": ...}.
        if err.status_code in (404, 405):
            return no_route(request.method, request.url.path)
        return error_response(err.status_code, str(err.detail))

    @app.post(
        "/v2/rerank",
        response_model=RerankResponse,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": RerankRequest.model_json_schema()}
                },
            }
        },
    )
    async def rerank(request: Request) -> Response:
        return await answer_rerank(
            contract,
            request,
            lambda body: _score(state, request, body),
            engine,
            metrics=metrics,
            available=lambda: _available(state),
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        body: dict[str, Any] = {"model": settings.model_name}
        if state.draining:
            return JSONResponse({**body, "status": "draining"}, 503)
        if batcher.load_error is not None:
            message = batcher.status_message()
            return JSONResponse({**body, "status": "failed", "message": message}, 503)
        if not batcher.ready.is_set():
            return JSONResponse({**body, "status": "loading"}, 503)
        return JSONResponse({**body, "status": "ready"})

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        refused = contract.unauthorized(request)
        if refused is not None:
            return refused
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app
