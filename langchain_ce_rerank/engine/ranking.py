"""Ordering scored candidates: sort by score, or fuse with the first stage."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_ce_rerank.engine.results import RerankResult, ScoredText
from langchain_ce_rerank.engine.windows import Span

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
    probabilities: Sequence[float] | None = None,
    min_probability: float | None = None,
) -> list[RerankResult]:
    """Scored candidates ordered, cut to `top_n`, *then* filtered by `threshold`.

    The one ordering rule behind `Reranker.order` (which resolves and checks
    the settings, then calls this) and every door; see it for the meaning of
    each argument. With `probabilities` (a calibration's, one per candidate)
    each result carries its probability, and `min_probability` is the last
    cut (`probability_cut`).

    Returns:
        The kept candidates in their new order.
    """
    scores = [item.score for item in scored]
    order = score_order(scores)
    fused: list[float] | None = None
    if fusion == "rrf":
        ce_rank = [0] * len(order)
        for rank, i in enumerate(order, start=1):
            ce_rank[i] = rank
        ranks = first_stage_ranks or list(range(1, len(scored) + 1))
        fused = reciprocal_rank_fusion([ce_rank, ranks], rrf_k)
        # Stable on the cross-encoder order: equal fused scores go to the
        # candidate the cross-encoder preferred.
        order = sorted(order, key=lambda i: -fused[i])
    if top_n is not None:
        order = order[:top_n]
    if threshold is not None:
        order = [i for i in order if scores[i] >= threshold]
    if probabilities is not None and min_probability is not None:
        # The candidates dropped here were dropped for "min_probability".
        order, _dropped = probability_cut(order, probabilities, min_probability)
    return [
        RerankResult(
            index=i,
            score=scores[i],
            rank=rank,
            passage=scored[i].passage,
            fused_score=None if fused is None else fused[i],
            probability=None if probabilities is None else probabilities[i],
        )
        for rank, i in enumerate(order, start=1)
    ]


def probability_cut(
    order: Sequence[int], probabilities: Sequence[float], min_probability: float
) -> tuple[list[int], list[int]]:
    """Split candidates by `min_probability`: (kept, dropped), each in order.

    A NaN probability (a NaN score) never clears it. When it drops every
    candidate it was given, a warning says so with the best probability
    there was, so an empty result is never a mystery.

    Args:
        order: Candidate indices, in ranked order (after `top_n` and the
            score threshold).
        probabilities: Each candidate's probability, by index.
        min_probability: The lowest probability kept.

    Returns:
        The kept indices and the dropped ones (dropped for `min_probability`).
    """
    kept = [i for i in order if probabilities[i] >= min_probability]
    dropped = [i for i in order if not probabilities[i] >= min_probability]
    if dropped and not kept:
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
