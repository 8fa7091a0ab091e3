"""The reranker as a Ray Serve deployment: N replicas behind Cohere's `/v2/rerank`.

Two deployments: `RerankIngress` speaks HTTP (validation, ordering, no
model) and sends each request's scoring to one of N `CrossEncoderDeployment`
replicas, each holding one engine whose model loads once, when the replica
starts. Requests waiting at a replica are coalesced by `@serve.batch` into one
`Reranker.score_batch` call (one length-sorted model stream); a request whose
replica dies is sent again to a live one. How many replicas run, autoscaling
and CPUs per replica are Ray Serve's own deployment options, so a Serve
config file sets them:

```yaml
applications:
  - name: ce-rerank
    route_prefix: /
    import_path: langchain_ce_rerank.serving.ray_serve:app_builder
    args: {model: cross-encoder/ms-marco-MiniLM-L6-v2}
    deployments:
      - name: CrossEncoderDeployment
        num_replicas: 2
```

`serve run examples/ray_serve_config.yaml` serves it; `RemoteCrossEncoder(url,
api="cohere")` (or any Cohere v2 client) calls it. The request and response
bodies are the models of `serving/schemas.py`, as for `ce-rerank serve`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from langchain_ce_rerank.engine import (
    DEFAULT_CROSS_ENCODER,
    Reranker,
    RerankerSettings,
    ScoredText,
    check_text,
)
from langchain_ce_rerank.serving.schemas import (
    ErrorBody,
    FieldError,
    RerankRequest,
    ranked_response,
)

# Importing this module means deploying on Ray Serve (nothing else imports it).
try:
    from ray import serve
    from ray.exceptions import RayActorError
    from ray.serve import Application, Deployment
    from ray.serve.exceptions import BackPressureError
    from ray.serve.handle import DeploymentHandle
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
except ImportError as _err:  # pragma: no cover - exercised without the extra
    _msg = (
        "the Ray Serve deployment needs ray[serve], which is not installed; "
        'pip install "langchain-ce-rerank[ray]"'
    )
    raise ImportError(_msg) from _err

__all__ = [
    "DEPLOYMENT_NAME",
    "INGRESS_NAME",
    "CrossEncoderDeployment",
    "CrossEncoderReplica",
    "IngressDeployment",
    "RayServeArgs",
    "RerankIngress",
    "ScoreJob",
    "app_builder",
    "build_app",
    "run_app",
]

logger = logging.getLogger(__name__)

DEPLOYMENT_NAME = "CrossEncoderDeployment"
"""The scoring deployment's name, as a Serve config's `deployments:` names it."""

INGRESS_NAME = "RerankIngress"
"""The HTTP deployment's name."""


class RayServeArgs(BaseModel):
    """The application's arguments: the `args:` of a Ray Serve config.

    Replica count, autoscaling and CPUs are Ray Serve deployment options; the
    fields here set their defaults, and a config's `deployments:` section
    overrides them.

    Example:
        ```python
        from langchain_ce_rerank.serving.ray_serve import RayServeArgs

        args = RayServeArgs(model="/models/ms-marco", num_replicas=2)
        print(args.served_name, args.max_batch_size)
        ```
    """

    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_CROSS_ENCODER
    """A Hugging Face model id, or a folder every replica's machine can read."""

    model_name: str | None = None
    """The name clients may send as `model`; None uses `model`."""

    reranker: dict[str, Any] = Field(default_factory=dict)
    """Other engine settings (`activation`, `batch_size`, `max_length`,
    `device`, `backend`, `quantization`, ...), as `Reranker(**reranker)`."""

    max_batch_size: int = Field(default=16, ge=1)
    """Most requests coalesced into one model call (`@serve.batch`)."""

    batch_wait_timeout_s: float = Field(default=0.005, ge=0)
    """How long a request may wait for others to share its model call."""

    use_cache: bool = True
    """Answer repeated (query, document) pairs from each replica's score cache."""

    num_replicas: int = Field(default=1, ge=1)
    """Replicas to run (Ray Serve's `num_replicas`; a config may instead give
    an `autoscaling_config`)."""

    num_cpus: float = Field(default=1.0, ge=0)
    """CPUs Ray reserves for each replica (`ray_actor_options.num_cpus`)."""

    @property
    def served_name(self) -> str:
        """The model name answered in `meta.model`."""
        return self.model_name or self.model

    def engine_settings(self) -> dict[str, Any]:
        """The validated engine settings each replica builds its `Reranker` from.

        Raises:
            ValueError: `reranker` holds an unknown or invalid setting.
        """
        # A relative folder is made absolute: replicas need not share the
        # working directory of the process that built the application.
        model = (
            str(Path(self.model).resolve()) if Path(self.model).exists() else self.model
        )
        settings = {**self.reranker, "model": model}
        unknown = sorted(set(settings) - set(RerankerSettings.model_fields))
        if unknown:
            msg = (
                f"reranker has unknown settings {unknown}; use engine settings "
                f"such as {sorted(RerankerSettings.model_fields)[:6]}"
            )
            raise ValueError(msg)
        RerankerSettings(**settings)
        return settings


@dataclass(frozen=True)
class ScoreJob:
    """One request's scoring work, sent from the ingress to a scoring replica."""

    query: str
    texts: list[str]
    max_tokens: int | None = None


def _error(
    status: int,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    errors = None if field is None else [FieldError(field=field, message=message)]
    body = ErrorBody(message=message, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status, headers=headers)


def _overloaded(err: BackPressureError) -> Response:
    """503 (or the configured 429) with Retry-After, as `ce-rerank serve` sheds load."""
    retry_after = max(1, math.ceil(err.retry_after_s or 1))
    return _error(
        err.status_code,
        f"the scoring replicas are busy: {err.message} Retry in about "
        f"{retry_after} s, or raise max_queued_requests (or the replica count) "
        "of the CrossEncoderDeployment in the Serve config",
        headers={"Retry-After": str(retry_after)},
    )


class CrossEncoderReplica:
    """A scoring replica: one engine whose model loads once, in the constructor.

    `score(job)` calls waiting together are scored in one `score_batch` call
    (`@serve.batch`). The HTTP side is `RerankIngress`, which calls this
    deployment through a handle.

    Example:
        ```python
        from ray import serve
        from langchain_ce_rerank.serving.ray_serve import (
            CrossEncoderDeployment,
            ScoreJob,
        )

        scorer = CrossEncoderDeployment.options(num_replicas=2).bind(
            {"model": "/models/ms-marco"}
        )
        handle = serve.run(scorer, name="scorer", route_prefix=None)
        print(handle.score.remote(ScoreJob("q", ["a text"])).result())
        ```
    """

    def __init__(
        self,
        settings: dict[str, Any],
        max_batch_size: int = 16,
        batch_wait_timeout_s: float = 0.005,
        use_cache: bool = True,
    ) -> None:
        self._engine = Reranker(**settings)
        self._engine.load_model()
        self._use_cache = use_cache
        self._batches: deque[int] = deque(maxlen=10_000)
        batched = cast(Any, self._score_jobs)  # serve.batch's setters are untyped
        batched.set_max_batch_size(max_batch_size)
        batched.set_batch_wait_timeout_s(batch_wait_timeout_s)
        logger.info("Replica %s loaded %s", os.getpid(), settings.get("model"))

    async def score(self, job: ScoreJob) -> list[float]:
        """Scores of `job.texts` against `job.query`, in input order.

        Raises:
            ValueError: A text the engine refuses (the whole batch is then
                retried one job at a time, so only this job fails).
        """
        result = await self._score_jobs(job)
        if isinstance(result, Exception):
            raise result
        return result

    def stats(self) -> dict[str, Any]:
        """This replica's process id and requests per model call, oldest first."""
        return {"pid": os.getpid(), "batches": list(self._batches)}

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def _score_jobs(self, jobs: list[ScoreJob]) -> list[list[float] | Exception]:
        self._batches.append(len(jobs))
        # The model call blocks: run it off the event loop so requests keep
        # arriving (and forming the next batch) meanwhile.
        return await asyncio.to_thread(self._score_blocking, jobs)

    def _score_blocking(self, jobs: list[ScoreJob]) -> list[list[float] | Exception]:
        items = [(job.query, self._truncate(job)) for job in jobs]
        try:
            scored = self._engine.score_batch(items, use_cache=self._use_cache)
        except (TypeError, ValueError):
            if len(jobs) == 1:
                raise
            outcomes: list[list[float] | Exception] = []
            for item in items:
                try:
                    outcomes.append(self._plain(self._engine.score_batch([item])[0]))
                except (TypeError, ValueError) as err:
                    outcomes.append(err)
            return outcomes
        return [self._plain(per_job) for per_job in scored]

    @staticmethod
    def _plain(scored: list[ScoredText]) -> list[float]:
        return [item.score for item in scored]

    def _truncate(self, job: ScoreJob) -> list[str]:
        if job.max_tokens is None:
            return job.texts
        return self._engine.truncate(job.texts, job.max_tokens)


class RerankIngress:
    """The HTTP door: Cohere v2 `POST /v2/rerank`, `GET /healthz`, `GET /readyz`.

    Validates the request, sends its scoring to a `CrossEncoderDeployment`
    replica and orders the scores. A request whose scoring replica dies
    (`RayActorError`) is sent again, to a live replica, up to `retries`
    times, so losing a replica loses no request.

    Example:
        ```python
        from ray import serve
        from langchain_ce_rerank.serving.ray_serve import (
            CrossEncoderDeployment,
            IngressDeployment,
        )

        settings = {"model": "/models/ms-marco"}
        scorer = CrossEncoderDeployment.options(num_replicas=2).bind(settings)
        app = IngressDeployment.bind(scorer, settings, model_name="ms-marco")
        serve.run(app, route_prefix="/")  # POST http://127.0.0.1:8000/v2/rerank
        ```
    """

    def __init__(
        self,
        scorer: DeploymentHandle[Any],
        settings: dict[str, Any],
        model_name: str,
        retries: int = 5,
    ) -> None:
        self._scorer = scorer
        # Orders scores only; its model is never loaded here.
        self._ranker = Reranker(**settings)
        self._model_name = model_name
        self._retries = retries

    async def __call__(self, request: Request) -> Response:
        """Route one HTTP request."""
        path = request.url.path.rstrip("/")
        if path.endswith("/v2/rerank") and request.method == "POST":
            return await self._rerank(await request.body())
        if path.endswith(("/healthz", "/readyz")) and request.method == "GET":
            return JSONResponse({"status": "ready", "model": self._model_name})
        return _error(404, f"no route {request.method} {path}; use POST /v2/rerank")

    async def _rerank(self, raw: bytes) -> Response:
        try:
            body = RerankRequest.model_validate_json(raw)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "body"
            message = str(first["msg"]).removeprefix("Value error, ")
            return _error(422, f"invalid request: {field}: {message}", field)
        if body.model is not None and body.model != self._model_name:
            return _error(
                404,
                f"model {body.model!r} is not served here; this deployment serves "
                f"{self._model_name!r} (send that name, or leave model out)",
            )
        try:
            check_text(body.query, "query")
            for i, text in enumerate(body.documents):
                check_text(text, f"documents[{i}]")
            scores = await self._score(
                ScoreJob(body.query, body.documents, body.max_tokens_per_doc)
            )
        except ValueError as err:
            field = str(err).split(" ", 1)[0]
            return _error(422, f"invalid request: {err}", field)
        except BackPressureError as err:
            return _overloaded(err)
        if not all(math.isfinite(score) for score in scores):
            return _error(500, "the model returned a non-finite score (NaN or inf)")
        response = ranked_response(self._ranker, scores, body.top_n, self._model_name)
        return JSONResponse(response.model_dump())

    async def _score(self, job: ScoreJob) -> list[float]:
        for attempt in range(self._retries + 1):
            try:
                scores: list[float] = await self._scorer.score.remote(job)
                return scores
            except RayActorError as err:
                # The replica died with the request on it: Serve's router
                # drops it and the next call goes to a live replica.
                if attempt == self._retries:
                    raise
                logger.warning("Scoring replica lost (%s); sending again", err)
                await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
        raise AssertionError("unreachable")  # pragma: no cover


CrossEncoderDeployment: Deployment = serve.deployment(name=DEPLOYMENT_NAME)(
    CrossEncoderReplica
)
"""The scoring deployment: `CrossEncoderReplica`s (`num_replicas` of them)."""

IngressDeployment: Deployment = serve.deployment(name=INGRESS_NAME)(RerankIngress)
"""The HTTP deployment: `RerankIngress`."""


def build_app(args: RayServeArgs) -> Application:
    """The Ray Serve application for `args`: one deployment of the engine.

    Args:
        args: Model, engine settings, batching and replica defaults.

    Returns:
        An application for `serve.run` (or a Serve config's `import_path`).

    Raises:
        ValueError: An engine setting in `args.reranker` is unknown or invalid.
    """
    settings = args.engine_settings()
    scorer = CrossEncoderDeployment.options(
        num_replicas=args.num_replicas,
        max_ongoing_requests=max(2 * args.max_batch_size, 8),
        ray_actor_options={"num_cpus": args.num_cpus},
    ).bind(
        settings,
        max_batch_size=args.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_timeout_s,
        use_cache=args.use_cache,
    )
    app: Application = IngressDeployment.options(
        max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0}
    ).bind(scorer, settings, model_name=args.served_name)
    return app


def app_builder(args: dict[str, Any]) -> Application:
    """Ray Serve's application builder: `import_path: ...ray_serve:app_builder`.

    Args:
        args: The config's `args:` mapping, validated as `RayServeArgs`.

    Returns:
        The application.

    Raises:
        pydantic.ValidationError: An unknown or invalid argument.

    Example:
        ```python
        from langchain_ce_rerank.serving.ray_serve import app_builder

        app = app_builder({"model": "/models/ms-marco", "num_replicas": 2})
        ```
    """
    return build_app(RayServeArgs.model_validate(args))


def run_app(
    args: RayServeArgs,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str = "ce-rerank",
    blocking: bool = True,
) -> None:
    """Start Ray Serve on `host:port` and deploy the reranker there.

    Connects to the Ray cluster of `RAY_ADDRESS` (or starts a local one).

    Args:
        args: What to deploy.
        host: Interface the HTTP proxy listens on.
        port: Its port.
        name: The Serve application's name.
        blocking: Serve until interrupted (Ctrl-C); False returns once deployed.
    """
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(args), name=name, route_prefix="/", blocking=blocking)
