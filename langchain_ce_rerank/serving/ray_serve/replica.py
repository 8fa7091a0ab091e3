"""The scoring replica: one engine per Ray Serve replica, batching requests."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from typing import Any, cast

from ray import serve
from ray.serve import Deployment

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.serving.jobs import Outcome, ScoreJob, score_jobs
from langchain_ce_rerank.serving.ray_serve.metrics import RayReplicaMetrics

logger = logging.getLogger(__name__)

DEPLOYMENT_NAME = "CrossEncoderDeployment"
"""The scoring deployment's name, as a Serve config's `deployments:` names it."""


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
        self._metrics = RayReplicaMetrics()
        batched = cast(Any, self._score_jobs)  # serve.batch's setters are untyped
        batched.set_max_batch_size(max_batch_size)
        batched.set_batch_wait_timeout_s(batch_wait_timeout_s)
        logger.info("Replica %s loaded %s", os.getpid(), settings.get("model"))

    async def score(self, job: ScoreJob) -> list[float]:
        """Scores of `job.texts` against `job.query`, in input order.

        Raises:
            Exception: Whatever stopped this job's scoring (a batch that fails
                is scored again one job at a time, so only this job fails).
        """
        result = await self._score_jobs(job)
        if isinstance(result, Exception):
            raise result
        return result

    def stats(self) -> dict[str, Any]:
        """This replica's process id and requests per model call, oldest first."""
        return {"pid": os.getpid(), "batches": list(self._batches)}

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def _score_jobs(self, jobs: list[ScoreJob]) -> list[Outcome]:
        self._batches.append(len(jobs))
        # The model call blocks: run it off the event loop so requests keep
        # arriving (and forming the next batch) meanwhile.
        return await asyncio.to_thread(self._score_blocking, jobs)

    def _score_blocking(self, jobs: list[ScoreJob]) -> list[Outcome]:
        started = time.perf_counter()
        outcomes = score_jobs(self._engine, jobs, use_cache=self._use_cache)
        pairs = sum(len(job.texts) for job in jobs)
        self._metrics.batch_scored(pairs, len(jobs), time.perf_counter() - started)
        return outcomes


CrossEncoderDeployment: Deployment = serve.deployment(name=DEPLOYMENT_NAME)(
    CrossEncoderReplica
)
"""The scoring deployment: `CrossEncoderReplica`s (`num_replicas` of them)."""
