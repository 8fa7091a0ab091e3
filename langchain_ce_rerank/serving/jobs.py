"""One scoring path for a batch of requests, shared by both server doors.

`ce-rerank serve`'s batcher and each Ray Serve replica coalesce waiting
requests into one `Reranker.score_batch` call (one length-sorted model
stream). If that call fails, each request is scored alone, so a request the
model refuses fails by itself and the others still get their scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_ce_rerank.engine.settings import UNSET

if TYPE_CHECKING:
    from langchain_ce_rerank.engine import Reranker

__all__ = ["Outcome", "ScoreJob", "score_jobs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreJob:
    """One request's scoring work: its query, its texts, and an optional cut.

    Example:
        ```python
        from langchain_ce_rerank.engine import Reranker
        from langchain_ce_rerank.serving.jobs import ScoreJob, score_jobs


        class Length:
            def score(self, pairs):
                return [float(len(text)) for _, text in pairs]


        jobs = [ScoreJob("q", ["a", "abc"]), ScoreJob("q", ["ab"])]
        print(score_jobs(Reranker(model=Length()), jobs))
        ```
    """

    query: str
    """The query every text is scored against."""

    texts: list[str]
    """The documents, in request order."""

    max_tokens: int | None = None
    """Cut each text to this many of the model's tokens first (Cohere's
    `max_tokens_per_doc`); None scores them whole."""

    instruction: str | None = None
    """The instruction to score under (the request's `instruction`); None
    keeps the engine's `instruction` setting."""


Outcome = list[float] | Exception
"""A job's scores in input order (plain floats), or why it could not be scored."""


def _texts(engine: Reranker, job: ScoreJob) -> list[str]:
    if job.max_tokens is None:
        return job.texts
    return engine.truncate(job.texts, job.max_tokens)


def score_jobs(
    engine: Reranker, jobs: Sequence[ScoreJob], *, use_cache: bool = True
) -> list[Outcome]:
    """Score `jobs` in one model stream; if it fails, each job alone.

    Jobs under different instructions go in one stream per instruction (a
    model call reads one); a job whose instruction the model cannot read
    fails alone with `InstructionNotSupportedError`.

    Args:
        engine: The engine that scores (its model is loaded on first use).
        jobs: The requests to score together.
        use_cache: Let the engine answer repeated pairs from its cache.

    Returns:
        One outcome per job, in order: its scores, or the exception that
        stopped it (a job's failure never takes the others down with it).
    """
    streams: dict[str | None, list[int]] = {}
    for i, job in enumerate(jobs):
        streams.setdefault(job.instruction, []).append(i)
    if len(streams) > 1:
        outcomes: list[Outcome] = [[] for _ in jobs]
        for members in streams.values():
            done = score_jobs(engine, [jobs[i] for i in members], use_cache=use_cache)
            for i, outcome in zip(members, done, strict=True):
                outcomes[i] = outcome
        return outcomes
    instruction = jobs[0].instruction if jobs else None
    try:
        items = [(job.query, _texts(engine, job)) for job in jobs]
        scored = engine.score_batch(
            items,
            use_cache=use_cache,
            instruction=UNSET if instruction is None else instruction,
        )
    except Exception as err:
        if len(jobs) == 1:
            logger.warning("Scoring a request failed: %s", err)
            return [err]
        return [
            outcome
            for job in jobs
            for outcome in score_jobs(engine, [job], use_cache=use_cache)
        ]
    return [[item.score for item in per_job] for per_job in scored]
