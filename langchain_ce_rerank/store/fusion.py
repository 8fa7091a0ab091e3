"""Fusing the dense and the keyword ranking into one candidate list.

Two ways, both weighted by `alpha` (the dense side's weight; BM25 gets
`1 - alpha`):

- `"rrf"`, Reciprocal Rank Fusion: a document scores
  `2 * alpha / (rrf_k + dense_rank) + 2 * (1 - alpha) / (rrf_k + bm25_rank)`,
  a side that did not return it adding nothing. At `alpha=0.5` this is the
  usual unweighted RRF sum of `1 / (rrf_k + rank)`. Only ranks count, so the
  two sides' score units never meet.
- `"weighted"`: each side's scores are min-max normalized over the candidates
  it returned (the best one 1, the last one 0; all 1 when they tie), then
  summed as `alpha * dense + (1 - alpha) * bm25`.

Ties keep the order of the best rank either side gave, then dense before BM25.

The defaults (`DEFAULT_ALPHA`, `DEFAULT_RRF_K`, and the retriever's depth of
`DEFAULT_DEPTH` per side) lean on the dense side with a small rank offset: of
129 settings tried on two held-out sets (`benchmarks/first_stage_quality.py`),
equal-weight RRF with `rrf_k=60` fell 0.037 behind dense's Recall@30 on
how-do-I questions, while these stay within 0.01 of the better side on both
the questions and the man-page option look-ups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = ["Candidate", "FusionMethod", "fuse"]

FusionMethod: TypeAlias = Literal["rrf", "weighted"]


@dataclass(frozen=True)
class Candidate:
    """One fused document, with what each side said about it (None: not found)."""

    id: str
    score: float
    dense_score: float | None = None
    dense_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None


def _normalized(scores: Sequence[float], higher_is_better: bool) -> list[float]:
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    span = high - low
    if higher_is_better:
        return [(s - low) / span for s in scores]
    return [(high - s) / span for s in scores]


DEFAULT_ALPHA = 0.7
"""The dense side's default weight in hybrid fusion (BM25 gets 0.3)."""

DEFAULT_RRF_K = 10
"""The default RRF rank offset: small, so a weight other than 0.5 is a slope
between the two sides rather than a cliff where one side always wins."""

DEFAULT_DEPTH = 50
"""Candidates each side hands to fusion by default (at least `k`)."""


def fuse(
    dense: Sequence[tuple[str, float]],
    bm25: Sequence[tuple[str, float]],
    *,
    method: FusionMethod = "rrf",
    alpha: float = DEFAULT_ALPHA,
    rrf_k: int = DEFAULT_RRF_K,
    dense_higher_is_better: bool = True,
) -> list[Candidate]:
    """Fuse two rankings of `(id, score)` pairs, best first, into one.

    Args:
        dense: The dense side's hits, best first.
        bm25: The keyword side's hits, best first.
        method: `"rrf"` or `"weighted"` (see the module docstring).
        alpha: Weight of the dense side, in [0, 1]; BM25 gets `1 - alpha`.
        rrf_k: RRF's rank offset; larger flattens the gap between top ranks.
        dense_higher_is_better: False for a distance (the store's `"l2"`).

    Returns:
        Every document either side returned, best fused score first.

    Example:
        ```python
        from langchain_ce_rerank.store.fusion import fuse

        fused = fuse([("a", 0.9), ("b", 0.8)], [("b", 7.1), ("c", 3.0)])
        assert [c.id for c in fused] == ["b", "a", "c"]
        ```
    """
    if method not in ("rrf", "weighted"):
        msg = f"fusion must be 'rrf' or 'weighted', got {method!r}"
        raise ValueError(msg)
    if not 0.0 <= alpha <= 1.0:
        msg = f"alpha must be between 0 and 1 (the dense side's weight), got {alpha!r}"
        raise ValueError(msg)
    if method == "rrf":
        dense_parts = [2 * alpha / (rrf_k + r) for r in range(1, len(dense) + 1)]
        bm25_parts = [2 * (1 - alpha) / (rrf_k + r) for r in range(1, len(bm25) + 1)]
    else:
        dense_parts = [
            alpha * n
            for n in _normalized([s for _, s in dense], dense_higher_is_better)
        ]
        bm25_parts = [(1 - alpha) * n for n in _normalized([s for _, s in bm25], True)]
    found: dict[str, dict[str, float | int]] = {}
    for rank, ((doc_id, score), part) in enumerate(
        zip(dense, dense_parts, strict=True), start=1
    ):
        found.setdefault(doc_id, {"score": 0.0})
        found[doc_id].update(dense_score=score, dense_rank=rank)
        found[doc_id]["score"] += part
    for rank, ((doc_id, score), part) in enumerate(
        zip(bm25, bm25_parts, strict=True), start=1
    ):
        found.setdefault(doc_id, {"score": 0.0})
        found[doc_id].update(bm25_score=score, bm25_rank=rank)
        found[doc_id]["score"] += part

    def order(item: tuple[str, dict[str, float | int]]) -> tuple[float, float, int]:
        values = item[1]
        dense_rank = values.get("dense_rank", float("inf"))
        bm25_rank = values.get("bm25_rank", float("inf"))
        return (-values["score"], min(dense_rank, bm25_rank), dense_rank > bm25_rank)

    return [
        Candidate(
            id=doc_id,
            score=float(values["score"]),
            dense_score=_float(values.get("dense_score")),
            dense_rank=_int(values.get("dense_rank")),
            bm25_score=_float(values.get("bm25_score")),
            bm25_rank=_int(values.get("bm25_rank")),
        )
        for doc_id, values in sorted(found.items(), key=order)
    ]


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _int(value: float | int | None) -> int | None:
    return None if value is None else int(value)
