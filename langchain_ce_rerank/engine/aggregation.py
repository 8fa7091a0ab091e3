"""A long document's score from its windows' scores (`passage_aggregation`).

Under `long_documents="max_passage"` every window of a document is scored.
`"max"` scores the document as its best window, as Cohere's and
Elasticsearch's chunked reranking and BERT-MaxP (Dai & Callan, 2019) do. The
maximum of more draws is higher by chance, so a long irrelevant document
outscores a short one of the same relevance (measured in
benchmarks/README.md). `"mean_top2"` scores it as the mean of its two best
windows (PyTerrier's k-max-average passage aggregation with k=2): a single
lucky window no longer carries a long document, and a document of one window
scores as that window. `"max_debiased"` subtracts from the best window what
chance alone adds to the best of n draws: the document's own window-score
standard deviation times the expected maximum of n standard normal draws
(about sqrt(2 ln n)); no setting to tune.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist, stdev
from typing import Final, Literal, TypeAlias

from langchain_ce_rerank.engine.ranking import score_order
from langchain_ce_rerank.engine.results import ScoredText
from langchain_ce_rerank.engine.windows import Span

__all__ = [
    "PASSAGE_AGGREGATIONS",
    "PassageAggregation",
    "aggregate",
    "best_windows",
]

PassageAggregation: TypeAlias = Literal["max", "mean_top2", "max_debiased"]
PASSAGE_AGGREGATIONS: Final[tuple[PassageAggregation, ...]] = (
    "max",
    "mean_top2",
    "max_debiased",
)


def expected_max(count: int) -> float:
    """Expected maximum of `count` standard normal draws (0 for one draw).

    Blom's approximation, within 0.03 of the exact value for every count.
    """
    if count < 2:
        return 0.0
    return NormalDist().inv_cdf((count - 0.375) / (count + 0.25))


def aggregate(
    scores: Sequence[float], how: PassageAggregation = "max"
) -> tuple[float, int]:
    """A document's score from its windows' scores, and its best window.

    Args:
        scores: One score per window (NaN for an unscored one ranks last).
        how: `"max"` (the best window's score), `"mean_top2"` (the mean of
            the two best) or `"max_debiased"` (the best, less what chance
            adds to the best of that many windows: the windows' sample standard
            deviation times `expected_max(count)`); one window scores as
            itself under each.

    Returns:
        The document's score and the index of its best window.

    Example:
        ```python
        from langchain_ce_rerank.engine.aggregation import aggregate

        print(aggregate([0.1, 0.9, 0.5]))  # (0.9, 1)
        print(aggregate([0.1, 0.9, 0.5], "mean_top2"))  # (0.7, 1)
        ```
    """
    order = score_order(scores)
    top = order[0]
    if how == "max" or len(order) == 1:
        return scores[top], top
    if how == "max_debiased":
        return scores[top] - stdev(scores) * expected_max(len(scores)), top
    return (scores[top] + scores[order[1]]) / 2, top


def best_windows(
    units: list[list[list[tuple[Span | None, str]]]],
    activated: list[float],
    how: PassageAggregation = "max",
) -> list[list[ScoredText]]:
    """Activated scores back into items, each text scored from its windows.

    Args:
        units: Per item, per text, its `(span, text)` windows, as scored.
        activated: Every window's score after `activation`, flat, in the
            order of `units`.
        how: The `passage_aggregation`; the passage is the best window's.
    """
    scores = iter(activated)
    results = []
    for per_text in units:
        scored = []
        for windows_ in per_text:
            score, top = aggregate([next(scores) for _ in windows_], how)
            scored.append(ScoredText(score, windows_[top][0]))
        results.append(scored)
    return results
