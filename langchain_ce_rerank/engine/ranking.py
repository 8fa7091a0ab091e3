"""Ordering scored candidates: sort by score, or fuse with the first stage."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_ce_rerank.engine.diversity import mmr, scaled
from langchain_ce_rerank.engine.results import RerankResult, ScoredText
from langchain_ce_rerank.engine.windows import Span

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "best_windows",
    "first_stage_ranks",
    "order",
    "probability_cut",
    "reciprocal_rank_fusion",
    "score_order",
]

logger = logging.getLogger(__name__)


def score_order(scores: Sequence[float]) -> list[int]:
    """Indices by score, highest first; ties keep input order, NaN goes last."""
    return sorted(range(len(scores)), key=lambda i: (math.isnan(scores[i]), -scores[i]))


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int) -> list[float]:
    """RRF score per item: the sum over rankings of 1 / (k + rank).

    Each ranking gives every item's 1-based rank. Written here rather than
    taken from ranx because it is one line per item on the per-query hot path,
    where building ranx `Run` objects would cost more than the fusion itself.
    """
    count = len(rankings[0])
    return [sum(1.0 / (k + ranks[i]) for ranks in rankings) for i in range(count)]


def order(
    scored: Sequence[ScoredText],
    *,
    top_n: int | None,
    threshold: float | None,
    fusion: Literal["none", "rrf"],
    rrf_k: int,
    first_stage_ranks: Sequence[int] | None,
    diversity: float = 0.0,
    similarity: npt.NDArray[np.float64] | None = None,
    probabilities: Sequence[float] | None = None,
    min_probability: float | None = None,
) -> list[RerankResult]:
    """Scored candidates ordered, cut to `top_n`, *then* filtered by `threshold`.

    The one ordering rule behind `Reranker.order` (which resolves and checks
    the settings, then calls this) and every door; see it for the meaning of
    each argument. With `diversity` above 0 the order is maximal marginal
    relevance over `similarity` (see `engine.diversity`). With
    `probabilities` (a calibration's, one per candidate) each scored result
    carries its probability, and `min_probability` is the last cut on the
    scored ones (`probability_cut`). Candidates left unscored by a deadline
    follow the kept ones in first-stage order, as many as `top_n` leaves
    room for, without a probability; neither the threshold nor
    `min_probability` applies to them.

    Returns:
        The kept candidates in their new order.
    """
    scores = [item.score for item in scored]
    done = [i for i, item in enumerate(scored) if item.scored]
    ranked = [done[i] for i in score_order([scores[i] for i in done])]
    fused: dict[int, float] = {}
    if fusion == "rrf" and ranked:
        ce_rank = {i: rank for rank, i in enumerate(ranked, start=1)}
        ranks = first_stage_ranks or list(range(1, len(scored) + 1))
        values = reciprocal_rank_fusion(
            [[ce_rank[i] for i in done], [ranks[i] for i in done]], rrf_k
        )
        fused = dict(zip(done, values, strict=True))
        # Stable on the cross-encoder order: equal fused scores go to the
        # candidate the cross-encoder preferred.
        ranked = sorted(ranked, key=lambda i: -fused[i])
    if diversity > 0 and len(ranked) > 1 and similarity is not None:
        key = [fused[i] for i in ranked] if fused else [scores[i] for i in ranked]
        relevance = [0.0] * len(scored)
        for i, value in zip(ranked, scaled(key), strict=True):
            relevance[i] = value
        # `diversity.displaced(before, ranked)` names what MMR left out.
        ranked = mmr(ranked, relevance, similarity, diversity, top_n)
    elif top_n is not None:
        ranked = ranked[:top_n]
    if threshold is not None:
        ranked = [i for i in ranked if scores[i] >= threshold]
    unscored = [i for i, item in enumerate(scored) if not item.scored]
    if probabilities is not None and min_probability is not None:
        # The candidates dropped here were dropped for "min_probability". No
        # warning of an empty result when unscored candidates will follow.
        ranked, _dropped = probability_cut(
            ranked, probabilities, min_probability, warn_if_empty=not unscored
        )
    results = [
        RerankResult(
            index=i,
            score=scores[i],
            rank=rank,
            passage=scored[i].passage,
            fused_score=fused.get(i),
            probability=None if probabilities is None else probabilities[i],
        )
        for rank, i in enumerate(ranked, start=1)
    ]
    if unscored:
        if first_stage_ranks is not None:
            unscored.sort(key=lambda i: first_stage_ranks[i])
        room = len(unscored) if top_n is None else max(top_n - len(results), 0)
        results += [
            RerankResult(index=i, score=math.nan, rank=rank, reranked=False)
            for rank, i in enumerate(unscored[:room], start=len(results) + 1)
        ]
    return results


def probability_cut(
    order: Sequence[int],
    probabilities: Sequence[float],
    min_probability: float,
    *,
    warn_if_empty: bool = True,
) -> tuple[list[int], list[int]]:
    """Split candidates by `min_probability`: (kept, dropped), each in order.

    A NaN probability (a NaN score) never clears it. When it drops every
    candidate it was given, a warning says so with the best probability
    there was, so an empty result is never a mystery (unless
    `warn_if_empty` is False: the result will not be empty, as when
    candidates a deadline left unscored follow the kept ones).

    Args:
        order: Candidate indices, in ranked order (after `top_n` and the
            score threshold).
        probabilities: Each candidate's probability, by index.
        min_probability: The lowest probability kept.
        warn_if_empty: Whether dropping every candidate warns.

    Returns:
        The kept indices and the dropped ones (dropped for `min_probability`).
    """
    kept = [i for i in order if probabilities[i] >= min_probability]
    dropped = [i for i in order if not probabilities[i] >= min_probability]
    if dropped and not kept and warn_if_empty:
        best = max(
            (probabilities[i] for i in dropped if not math.isnan(probabilities[i])),
            default=math.nan,
        )
        logger.warning(
            "No result: %s reached min_probability=%g (the best "
            "relevance_probability was %.3f); returning no documents. Lower "
            "min_probability to see weaker matches.",
            "the only candidate"
            if len(dropped) == 1
            else f"none of the {len(dropped)} candidates",
            min_probability,
            best,
        )
    return kept, dropped


def first_stage_ranks(metadata: Sequence[Mapping[str, Any]]) -> list[int] | None:
    """Each candidate's 1-based first-stage rank, from `metadata["retrieval_rank"]`.

    For `fusion="rrf"` in a door whose candidates carry the first stage's rank
    in their metadata (as `FaissRetriever` writes it).

    Args:
        metadata: Each candidate's metadata, in input order.

    Returns:
        The ranks, or None (use the input order) unless every candidate has an
        integer rank; a warning says so when only some have one.
    """
    ranks = [item.get("retrieval_rank") for item in metadata]
    if all(isinstance(r, int) and not isinstance(r, bool) for r in ranks):
        return [int(r) for r in ranks]  # type: ignore[arg-type]
    if any(r is not None for r in ranks):
        logger.warning(
            "Some documents lack an integer retrieval_rank; RRF uses the "
            "input order as the first-stage order for all of them."
        )
    return None


def best_windows(
    units: list[list[list[tuple[Span | None, str]]]], activated: list[float]
) -> list[list[ScoredText]]:
    """Activated scores back into items, each text scoring as its best window.

    Args:
        units: Per item, per text, its `(span, text)` windows, as scored.
        activated: Every window's score after `activation`, flat, in the
            order of `units`.
    """
    scores = iter(activated)
    results = []
    for per_text in units:
        scored = []
        for windows_ in per_text:
            window_scores = [next(scores) for _ in windows_]
            top = score_order(window_scores)[0]
            scored.append(ScoredText(window_scores[top], windows_[top][0]))
        results.append(scored)
    return results
