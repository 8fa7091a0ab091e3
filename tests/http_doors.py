"""Both HTTP doors in process: `ce-rerank serve`'s app and the Ray Serve ingress.

`serve_door(engine)` runs `create_app` with its lifespan (the real batcher);
`ray_door(settings)` runs the Ray Serve ingress class with a handle that
scores the way a replica does (`score_jobs`), since `@serve.batch` only runs
inside a Serve replica (`tests/integration_tests/test_ray.py` covers that).
Needs the [serve] and [ray] extras: import it after `pytest.importorskip`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.requests import Request

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.serving import ServeSettings, create_app
from langchain_ce_rerank.serving.jobs import ScoreJob, score_jobs
from langchain_ce_rerank.serving.ray_serve import RayServeArgs, RerankIngress


class ReplicaHandle:
    """What the ingress calls as `handle.score.remote(job)`, scoring in process
    the way a replica does (`score_jobs`); Ray's router is what it leaves out."""

    def __init__(self, engine: Reranker) -> None:
        self.score = self
        self._engine = engine

    async def remote(self, job: ScoreJob) -> list[float]:
        (outcome,) = score_jobs(self._engine, [job])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class IngressApp:
    """The ingress as an ASGI app (Ray Serve's proxy does this for it)."""

    def __init__(self, ingress: RerankIngress) -> None:
        self._ingress = ingress

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self._ingress(Request(scope, receive))
        await response(scope, receive, send)


@asynccontextmanager
async def serve_door(
    engine: Reranker, settings: ServeSettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `create_app(engine, settings)`, once its model has loaded."""
    app = create_app(engine, settings or ServeSettings(model_name="m"))
    async with app.router.lifespan_context(app):
        ready = app.state.ce_rerank.batcher.ready
        assert await asyncio.to_thread(ready.wait, 30), "the model never loaded"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


@asynccontextmanager
async def ray_door(
    settings: Mapping[str, Any], args: RayServeArgs | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the Ray Serve ingress over a `Reranker(**settings)` replica."""
    args = args or RayServeArgs(model="unused", model_name="m")
    ingress = RerankIngress(
        ReplicaHandle(Reranker(**settings)),  # type: ignore[arg-type]
        dict(settings),
        args.request_limits(),
        args.served_name,
    )
    transport = httpx.ASGITransport(app=IngressApp(ingress))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client
