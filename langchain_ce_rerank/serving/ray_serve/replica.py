"""The scoring replica: one engine per Ray Serve replica, batching requests."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

from ray import serve
from ray.serve import Deployment

from langchain_ce_rerank.engine import Reranker, ScoredText

logger = logging.getLogger(__name__)

DEPLOYMENT_NAME = "CrossEncoderDeployment"
"""The scoring deployment's name, as a Serve config's `deployments:` names it."""


@dataclass(frozen=True)
class ScoreJob:
    """One request's scoring work, sent from the ingress to a scoring replica."""

    query: str
    texts: list[str]
    max_tokens: int | None = None


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


CrossEncoderDeployment: Deployment = serve.deployment(name=DEPLOYMENT_NAME)(
    CrossEncoderReplica
)
"""The scoring deployment: `CrossEncoderReplica`s (`num_replicas` of them)."""
