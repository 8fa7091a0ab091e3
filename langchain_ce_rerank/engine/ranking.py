"""Ordering scored candidates, keeping what the settings allow, saying why not.

Sort by score, or fuse with the first stage; then keep what the ranking
settings allow and record why each of the others was dropped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.engine.results import (
    DroppedCandidate,
    RerankResult,
    ScoredText,
    Selection,
)
from langchain_ce_rerank.engine.shaping import TokenCounter, fit_budget, per_group
from langchain_ce_rerank.engine.windows import Span

if TYPE_CHECKING:
    from langchain_ce_rerank.engine.settings import RankingSettings

__all__ = [
    "best_windows",
    "first_stage_ranks",
    "reciprocal_rank_fusion",
    "score_order",
    "select",
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


def select(
    scored: Sequence[ScoredText],
    settings: RankingSettings,
    *,
    first_stage_ranks: Sequence[int] | None = None,
    groups: Sequence[Hashable] | None = None,
    contents: Sequence[str] | None = None,
    windows: Sequence[Span | None] | None = None,
    count: TokenCounter | None = None,
) -> Selection:
    """The one ordering rule behind `Reranker.select` and every door.

    In this order: sort by score, highest first (ties keep input order, NaN
    last), or by RRF (`fusion="rrf"`); keep `max_per_group` per group
    (`group_by`); cut to `top_n`; drop scores under `score_threshold`; take
    results while they fit `max_context_tokens`. Each candidate a step drops
    is recorded with that step's reason (`DROP_REASONS`).

    Args:
        scored: One `score_batch` item's result.
        settings: The resolved ranking settings of this call.
        first_stage_ranks: 1-based first-stage rank per candidate, for RRF;
            None uses the input order.
        groups: Each candidate's group, needed with `group_by`.
        contents: Each candidate's returned text, needed with
            `max_context_tokens`.
        windows: Each candidate's best window in its content (None: the
            whole text), to cut a result that alone is over the budget.
        count: The token counter, needed with `max_context_tokens`.

    Returns:
        The kept results in order, and the dropped candidates with reasons.
    """
    scores = [item.score for item in scored]
    ranked = score_order(scores)
    fused: list[float] | None = None
    if settings.fusion == "rrf":
        ce_rank = [0] * len(ranked)
        for rank, i in enumerate(ranked, start=1):
            ce_rank[i] = rank
        ranks = first_stage_ranks or list(range(1, len(scored) + 1))
        fused = reciprocal_rank_fusion([ce_rank, ranks], settings.rrf_k)
        # Stable on the cross-encoder order: equal fused scores go to the
        # candidate the cross-encoder preferred.
        ranked = sorted(ranked, key=lambda i: -fused[i])
    position = {i: p for p, i in enumerate(ranked)}
    dropped: list[DroppedCandidate] = []

    def drop(indices: Sequence[int], reason: str) -> None:
        dropped.extend(DroppedCandidate(i, scores[i], reason) for i in indices)

    kept = ranked
    if settings.group_by is not None:
        if groups is None:
            msg = "group_by needs each candidate's group: pass groups=[...]"
            raise ValueError(msg)
        kept, full = per_group(kept, groups, settings.max_per_group or 1)
        drop(full, "group_full")
    if settings.top_n is not None:
        drop(kept[settings.top_n :], "top_n")
        kept = kept[: settings.top_n]
    if settings.score_threshold is not None:
        threshold = settings.score_threshold
        drop([i for i in kept if not scores[i] >= threshold], "score_threshold")
        kept = [i for i in kept if scores[i] >= threshold]
    fitted: dict[int, tuple[int, Span | None]] = {}
    if settings.max_context_tokens is not None:
        if contents is None or count is None:
            msg = "max_context_tokens needs each candidate's contents and a counter"
            raise ValueError(msg)
        taken, over = fit_budget(
            kept,
            contents,
            windows or [None] * len(scored),
            settings.max_context_tokens,
            count,
        )
        fitted = {i: (tokens, cut) for i, tokens, cut in taken}
        drop(over, "context_budget")
        kept = [i for i, _, _ in taken]
    dropped.sort(key=lambda item: position[item.index])
    return Selection(
        results=[
            RerankResult(
                index=i,
                score=scores[i],
                rank=rank,
                passage=scored[i].passage,
                fused_score=None if fused is None else fused[i],
                tokens=fitted[i][0] if i in fitted else None,
                cut=fitted[i][1] if i in fitted else None,
            )
            for rank, i in enumerate(kept, start=1)
        ],
        dropped=dropped,
    )


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
