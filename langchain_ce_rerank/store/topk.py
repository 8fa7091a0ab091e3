"""Choosing the `k` best of an array of scores, the same way on every side.

The dense side (`faiss_index.search`'s few-query path) and the keyword side
(`BM25Index.search`) both select with `top_k`, so ties are broken alike: the
earlier row wins, in every copy of a store and from run to run.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["top_k"]


def top_k(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Positions of the `k` best scores, best first; ties go to the earlier one.

    A bare `argpartition` would pick arbitrarily among scores tied at the k-th
    place; taking every candidate at or above it and sorting by (score,
    position) keeps the answer the same from run to run and store to store.
    `k` larger than `len(scores)` returns every position.

    Example:
        ```python
        import numpy as np
        from langchain_ce_rerank.store.topk import top_k

        assert top_k(np.array([0.5, 0.9, 0.5, 0.1], dtype=np.float32), 2).tolist() == [
            1,
            0,
        ]
        ```
    """
    k = min(k, len(scores))
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    candidates = np.flatnonzero(scores >= kth)
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return candidates[order]
