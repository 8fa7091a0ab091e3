"""Ordering scored candidates, keeping what the settings allow, saying why not.

Sort by score, or fuse with the first stage; then keep what the ranking
settings allow and record why each of the others was dropped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.engine.diversity import DIVERSITY_DROP, displaced, mmr, scaled
from langchain_ce_rerank.engine.results import (
    DroppedCandidate,
    RerankResult,
    ScoredText,
    Selection,
)
from langchain_ce_rerank.engine.shaping import TokenCounter, fit_budget, per_group
from langchain_ce_rerank.engine.windows import Span

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from langchain_ce_rerank.engine.settings import RankingSettings

__all__ = [
    "first_stage_ranks",
    "probability_cut",
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
    similarity: npt.NDArray[np.float64] | None = None,
    probabilities: Sequence[float] | None = None,
) -> Selection:
    """The one ordering rule behind `Reranker.select` and every door.

    In this order, each step recording the candidates it drops with its
    reason (`DROP_REASONS`):

    1. the scored candidates sorted by score, highest first (ties keep input
       order, NaN last), or by RRF (`fusion="rrf"`);
    2. at most `max_per_group` per group (`group_by`): `"group_full"`;
    3. `top_n`, picked by maximal marginal relevance over `similarity` when
       `diversity` is above 0 (see `engine.diversity`): the ones the plain
       order would have kept are `"diversity"`, the rest `"top_n"`;
    4. `score_threshold`, then `min_probability` (with `probabilities`, a
       calibration's, one per candidate; each scored result then carries
       its probability);
    5. candidates a deadline left unscored follow in first-stage order,
       without a score or probability, neither threshold applying to them;
       they count against `max_per_group` like any other (`"group_full"`)
       and fill only the room `top_n` leaves (`"top_n"`);
    6. results taken in that order while their content fits
       `max_context_tokens` (unscored ones count too): `"context_budget"`.

    So a deadline never returns fewer documents than the same call without
    one, before the token budget (which counts tokens, not documents).

    Args:
        scored: One `score_batch` item's result.
        settings: The resolved ranking settings of this call.
        first_stage_ranks: 1-based first-stage rank per candidate, for RRF
            and the order of unscored candidates; None uses the input order.
        groups: Each candidate's group, needed with `group_by`.
        contents: Each candidate's returned text, needed with
            `max_context_tokens`.
        windows: Each candidate's best window in its content (None: the
            whole text), to cut a result that alone is over the budget.
        count: The token counter, needed with `max_context_tokens`.
        similarity: Pairwise similarity of the candidates, for `diversity`.
        probabilities: Each candidate's calibrated probability, for
            `min_probability`.

    Returns:
        The kept results in order, and the dropped candidates with reasons.
    """
    scores = [item.score for item in scored]
    done = [i for i, item in enumerate(scored) if item.scored]
    ranked = [done[i] for i in score_order([scores[i] for i in done])]
    fused: dict[int, float] = {}
    if settings.fusion == "rrf" and ranked:
        ce_rank = {i: rank for rank, i in enumerate(ranked, start=1)}
        ranks = first_stage_ranks or list(range(1, len(scored) + 1))
        values = reciprocal_rank_fusion(
            [[ce_rank[i] for i in done], [ranks[i] for i in done]], settings.rrf_k
        )
        fused = dict(zip(done, values, strict=True))
        # Stable on the cross-encoder order: equal fused scores go to the
        # candidate the cross-encoder preferred.
        ranked = sorted(ranked, key=lambda i: -fused[i])
    position = {i: p for p, i in enumerate(ranked)}
    dropped: list[DroppedCandidate] = []

    def drop(indices: Sequence[int], reason: str) -> None:
        dropped.extend(
            DroppedCandidate(i, scores[i], reason, scored[i].scored) for i in indices
        )

    top_n = settings.top_n
    limit = settings.max_per_group or 1
    if settings.group_by is not None:
        if groups is None:
            msg = "group_by needs each candidate's group: pass groups=[...]"
            raise ValueError(msg)
        ranked, full = per_group(ranked, groups, limit)
        drop(full, "group_full")
    kept = ranked
    if settings.diversity > 0 and len(ranked) > 1 and similarity is not None:
        key = [fused[i] for i in ranked] if fused else [scores[i] for i in ranked]
        relevance = [0.0] * len(scored)
        for i, value in zip(ranked, scaled(key), strict=True):
            relevance[i] = value
        kept = mmr(ranked, relevance, similarity, settings.diversity, top_n)
        pushed = displaced(ranked, kept)
        drop(pushed, DIVERSITY_DROP)
        chosen = {*kept, *pushed}
        drop([i for i in ranked if i not in chosen], "top_n")
    elif top_n is not None:
        drop(ranked[top_n:], "top_n")
        kept = ranked[:top_n]
    if settings.score_threshold is not None:
        threshold = settings.score_threshold
        drop([i for i in kept if not scores[i] >= threshold], "score_threshold")
        kept = [i for i in kept if scores[i] >= threshold]
    unscored = [i for i, item in enumerate(scored) if not item.scored]
    if probabilities is not None and settings.min_probability is not None:
        # No warning of an empty result when unscored candidates will follow.
        kept, low = probability_cut(
            kept, probabilities, settings.min_probability, warn_if_empty=not unscored
        )
        drop(low, "min_probability")
    reranked = len(kept)
    if unscored:
        if first_stage_ranks is not None:
            unscored.sort(key=lambda i: first_stage_ranks[i])
        position.update({i: len(position) + p for p, i in enumerate(unscored)})
        if settings.group_by is not None and groups is not None:
            kept, full = per_group([*kept, *unscored], groups, limit)
            unscored = kept[reranked:]
            kept = kept[:reranked]
            drop(full, "group_full")
        room = len(unscored) if top_n is None else max(top_n - len(kept), 0)
        drop(unscored[room:], "top_n")
        kept += unscored[:room]
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
                score=scores[i] if scored[i].scored else math.nan,
                rank=rank,
                passage=scored[i].passage,
                fused_score=fused.get(i),
                tokens=fitted[i][0] if i in fitted else None,
                cut=fitted[i][1] if i in fitted else None,
                probability=None
                if probabilities is None or not scored[i].scored
                else probabilities[i],
                reranked=scored[i].scored,
            )
            for rank, i in enumerate(kept, start=1)
        ],
        dropped=dropped,
    )


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
