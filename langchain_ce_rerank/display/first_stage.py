"""Which side of the first stage found a candidate, and what its score means.

`FaissRetriever`'s `search_type="bm25"` and `"hybrid"` put `dense_rank` /
`dense_score` and `bm25_rank` / `bm25_score` in each document's metadata
(None where that side did not return it), with the fused values in
`retrieval_rank` / `retrieval_score`; plain dense search puts none of them.
`explain()` and `ce-rerank query` read them here, so both tables say it alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["FOUND_BY_NOTE", "SIDE_KEYS", "first_stage_kind", "found_by"]

SIDE_KEYS = ("dense_score", "dense_rank", "bm25_score", "bm25_rank")
"""The metadata keys a keyword or hybrid first stage adds to each document."""

FOUND_BY_NOTE = (
    "found by: the first-stage side that returned it, with its rank there "
    "(both: dense rank/bm25 rank)"
)
"""The note under a table with a "found by" column."""


def _rank(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def found_by(metadata: Mapping[str, object]) -> str | None:
    """`"dense 3"`, `"bm25 1"` or `"both 2/7"`; None without side keys.

    Args:
        metadata: A document's metadata.

    Returns:
        The side (or both) that returned the document with its rank there,
        dense first; None when the metadata has no side keys (a plain dense
        first stage, or any other retriever), so a table can leave the
        column out; `""` when it has the keys but neither rank.
    """
    if not any(key in metadata for key in SIDE_KEYS):
        return None
    dense = _rank(metadata.get("dense_rank"))
    bm25 = _rank(metadata.get("bm25_rank"))
    if dense is not None and bm25 is not None:
        return f"both {dense}/{bm25}"
    if dense is not None:
        return f"dense {dense}"
    if bm25 is not None:
        return f"bm25 {bm25}"
    return ""


def first_stage_kind(metadatas: Iterable[Mapping[str, object]], dense: str) -> str:
    """What the documents' `retrieval_score` is: `dense`, `"BM25"` or `"hybrid"`.

    Without side keys it is the dense score (`dense`, e.g. `"cosine"`). With
    them it is whichever side's score it equals in every document (`"bm25"`
    search, or its dense fallback), else the fused score of `"hybrid"`.

    Args:
        metadatas: The documents' metadata.
        dense: The name of the dense score (`"cosine"`, `"L2 distance"`...).
    """
    sided = [m for m in metadatas if any(key in m for key in SIDE_KEYS)]
    if not sided:
        return dense
    for side, name in (("dense_score", dense), ("bm25_score", "BM25")):
        if all(
            m.get("retrieval_score") is not None
            and m.get("retrieval_score") == m.get(side)
            for m in sided
        ):
            return name
    return "hybrid"
