"""The HTTP ingress: Cohere v2 `/v2/rerank` in front of the scoring replicas."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from ray import serve
from ray.exceptions import RayActorError
from ray.serve import Deployment
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.serving.contract import (
    SERVE_CONFIG_ARGS,
    RequestContract,
    RequestLimits,
    ServiceUnavailableError,
    answer_rerank,
    no_route,
)
from langchain_ce_rerank.serving.jobs import ScoreJob
from langchain_ce_rerank.serving.ray_serve.metrics import RayIngressMetrics
from langchain_ce_rerank.serving.schemas import RerankRequest

logger = logging.getLogger(__name__)

INGRESS_NAME = "RerankIngress"
"""The HTTP deployment's name."""


def _overloaded(err: BackPressureError) -> ServiceUnavailableError:
    """503 with Retry-After, as `ce-rerank serve` sheds load."""
    retry_after = max(1, math.ceil(err.retry_after_s or 1))
    return ServiceUnavailableError(
        f"the scoring replicas are busy: {err.message} Retry in about "
        f"{retry_after} s, or raise max_queued_requests (or the replica count) "
        "of the CrossEncoderDeployment in the Serve config",
        retry_after=retry_after,
    )


class RerankIngress:
    """The HTTP door: Cohere v2 `POST /v2/rerank`, `GET /healthz`, `GET /readyz`.

    Holds requests to the same contract as `ce-rerank serve`
    (`serving.contract`): the API key, the body, document and character
    limits, the model name, and the same error bodies and status codes, with
    each limit named as the Serve config's `args` spell it. A request that
    passes is scored on a `CrossEncoderDeployment` replica and ordered here;
    the request series are recorded with Ray Serve's metrics
    (`ray_ce_rerank_requests_total`, ...). A request whose scoring replica dies
    (`RayActorError`) is sent again, to a live replica, up to `retries`
    times, so losing a replica loses no request.

    Example:
        ```python
        from ray import serve
        from langchain_ce_rerank.serving.contract import RequestLimits
        from langchain_ce_rerank.serving.ray_serve import (
            CrossEncoderDeployment,
            IngressDeployment,
        )

        settings = {"model": "/models/ms-marco"}
        scorer = CrossEncoderDeployment.options(num_replicas=2).bind(settings)
        limits = RequestLimits(api_key="s3cret", max_documents=200)
        app = IngressDeployment.bind(scorer, settings, limits, "ms-marco")
        serve.run(app, route_prefix="/")  # POST http://127.0.0.1:8000/v2/rerank
        ```
    """

    def __init__(
        self,
        scorer: DeploymentHandle[Any],
        settings: dict[str, Any],
        limits: RequestLimits,
        model_name: str,
        retries: int = 5,
    ) -> None:
        self._scorer = scorer
        # Orders scores only; its model is never loaded here.
        self._ranker = Reranker(**settings)
        self._contract = RequestContract(limits, model_name, SERVE_CONFIG_ARGS)
        self._retries = retries
        self._metrics = RayIngressMetrics()

    async def __call__(self, request: Request) -> Response:
        """Route one HTTP request."""
        path = request.url.path.rstrip("/")
        if path.endswith("/v2/rerank") and request.method == "POST":
            return await answer_rerank(
                self._contract,
                request,
                self._score_request,
                self._ranker,
                metrics=self._metrics,
            )
        if path.endswith(("/healthz", "/readyz")) and request.method == "GET":
            model = self._contract.model_name
            return JSONResponse({"status": "ready", "model": model})
        return no_route(request.method, request.url.path)

    async def _score_request(self, body: RerankRequest) -> list[float]:
        try:
            return await self._score(
                ScoreJob(
                    body.query,
                    body.documents,
                    body.max_tokens_per_doc,
                    body.instruction,
                )
            )
        except BackPressureError as err:
            raise _overloaded(err) from err

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
