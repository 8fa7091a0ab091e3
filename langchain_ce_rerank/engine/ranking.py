"""Ordering scored candidates: sort by score, or fuse with the first stage."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
