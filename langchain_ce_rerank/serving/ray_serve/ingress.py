"""The HTTP ingress: Cohere v2 `/v2/rerank` in front of the scoring replicas."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from pydantic import ValidationError
from ray import serve
from ray.exceptions import RayActorError
from ray.serve import Deployment
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from langchain_ce_rerank.engine import Reranker, check_text
from langchain_ce_rerank.serving.ray_serve.replica import ScoreJob
from langchain_ce_rerank.serving.schemas import (
    ErrorBody,
    FieldError,
    RerankRequest,
    ranked_response,
)

logger = logging.getLogger(__name__)

INGRESS_NAME = "RerankIngress"
"""The HTTP deployment's name."""


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


IngressDeployment: Deployment = serve.deployment(name=INGRESS_NAME)(RerankIngress)
"""The HTTP deployment: `RerankIngress`."""
