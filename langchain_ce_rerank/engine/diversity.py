r"""Diversity after reranking: maximal marginal relevance (`diversity=λ`).

The cross-encoder scores each candidate alone, so five near-copies of one
passage can fill the top five. With `diversity=λ` above 0 the kept documents
are picked one at a time: each next one maximizes

    (1 - λ) * relevance - λ * (its highest similarity to a document already picked)

where relevance is the order's own score (`fused_score` with RRF, else the
cross-encoder's), min-max scaled to [0, 1] over the call's scored candidates,
so that λ means the same whatever the model's score scale. The first pick is
always the most relevant document; λ = 0 is the plain order.

Similarity, in order of preference:

- the cosine of the first stage's embeddings, when every candidate came with
  one (`metadata["retrieval_embedding"]`, which `FaissRetriever` attaches with
  `include_embeddings=True` and `RerankingRetriever` asks for by itself; a
  LlamaIndex `node.embedding`; or `embeddings=` to `Reranker.order`): nothing
  is embedded a second time;
- otherwise the Jaccard overlap of the candidates' word sets (lowercased
  word tokens, `\w+`, of the text the model read): no model, no second embedding
  pass; it sees repeated wording, not paraphrase.

Numpy is imported only when diversity is asked for.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "DIVERSITY_DROP",
    "EMBEDDING_KEY",
    "DiversityDrop",
    "SimilarityKind",
    "cosine_similarities",
    "displaced",
    "first_stage_embeddings",
    "mmr",
    "scaled",
    "similarities",
    "word_set_similarities",
]

EMBEDDING_KEY: Final = "retrieval_embedding"
"""The metadata key under which a first stage hands a candidate's vector to
the reranker (a list of floats)."""

DiversityDrop = Literal["diversity"]
"""Why a candidate that the relevance order would have kept was left out."""
DIVERSITY_DROP: Final[DiversityDrop] = "diversity"

SimilarityKind = Literal["embeddings", "word_sets"]
"""Which similarity `similarities` used."""

_WORD = re.compile(r"\w+")

logger = logging.getLogger(__name__)


def first_stage_embeddings(metadata: Sequence[Mapping[str, Any]]) -> list[Any] | None:
    """Each candidate's first-stage vector, from `metadata["retrieval_embedding"]`.

    For doors whose candidates carry the first stage's vector in their
    metadata (as `FaissRetriever(include_embeddings=True)` writes it).

    Args:
        metadata: Each candidate's metadata, in input order.

    Returns:
        The vectors, or None (compare word sets) unless every candidate has
        one; a warning says so when only some have one.
    """
    vectors = [item.get(EMBEDDING_KEY) for item in metadata]
    if all(vector is not None for vector in vectors):
        return vectors
    if any(vector is not None for vector in vectors):
        logger.warning(
            "Some documents lack metadata[%r]; diversity compares the word "
            "sets of all of them instead.",
            EMBEDDING_KEY,
        )
    return None


def scaled(values: Sequence[float]) -> list[float]:
    """`values` min-max scaled to [0, 1]; NaN counts as the lowest (0).

    All equal (or only one) values scale to 1.0.
    """
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return [0.0] * len(values)
    low, high = min(finite), max(finite)
    if high == low:
        return [0.0 if math.isnan(v) else 1.0 for v in values]
    return [0.0 if math.isnan(v) else (v - low) / (high - low) for v in values]


def cosine_similarities(vectors: Any) -> npt.NDArray[np.float64]:
    """Pairwise cosine similarity of the rows of `vectors` (a zero row: 0).

    Raises:
        ValueError: `vectors` is not a 2-d array of finite numbers.
    """
    import numpy as np

    try:
        matrix = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as err:
        msg = (
            "embeddings must be one list of numbers per candidate, all of one "
            f"length ({err})"
        )
        raise ValueError(msg) from None
    if matrix.ndim != 2 or not np.isfinite(matrix).all():
        msg = (
            "embeddings must be one list of finite numbers per candidate, all "
            f"of one length; got an array of shape {matrix.shape}"
        )
        raise ValueError(msg)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit @ unit.T  # type: ignore[no-any-return]


def word_set_similarities(texts: Sequence[str]) -> npt.NDArray[np.float64]:
    """Pairwise Jaccard overlap of the texts' sets of lowercased words.

    A handful of numpy lines over at most a few hundred candidates: no
    library is worth a dependency for it. Two texts without words score 0.
    """
    import numpy as np

    sets = [set(_WORD.findall(text.lower())) for text in texts]
    vocabulary = {word: i for i, word in enumerate(set().union(*sets))}
    present = np.zeros((len(texts), len(vocabulary)), dtype=np.float64)
    for row, words in enumerate(sets):
        present[row, [vocabulary[w] for w in words]] = 1.0
    shared = present @ present.T
    sizes = present.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - shared
    return np.divide(  # type: ignore[no-any-return]
        shared, union, out=np.zeros_like(shared), where=union > 0
    )


def similarities(
    count: int, *, embeddings: Any = None, texts: Sequence[str] | None = None
) -> tuple[npt.NDArray[np.float64], SimilarityKind]:
    """The candidates' pairwise similarity, and which kind it is.

    Args:
        count: The number of candidates.
        embeddings: One vector per candidate (the first stage's), or None.
        texts: The candidates' texts, for the word-set fallback.

    Returns:
        A `count` x `count` matrix: the embeddings' cosines when given, else
        the texts' word-set overlap.

    Raises:
        ValueError: Neither is given, or either has other than `count` rows.
    """
    if embeddings is not None:
        matrix = cosine_similarities(embeddings)
        if len(matrix) != count:
            msg = f"embeddings has {len(matrix)} vectors for {count} candidates"
            raise ValueError(msg)
        return matrix, "embeddings"
    if texts is None:
        msg = (
            "diversity compares the candidates with each other: pass their "
            "texts= or embeddings= (one vector each) to Reranker.order"
        )
        raise ValueError(msg)
    if len(texts) != count:
        msg = f"texts has {len(texts)} items for {count} candidates"
        raise ValueError(msg)
    return word_set_similarities(texts), "word_sets"


def mmr(
    candidates: Sequence[int],
    relevance: Sequence[float],
    similarity: npt.NDArray[np.float64],
    diversity: float,
    count: int | None,
) -> list[int]:
    """Maximal marginal relevance: `count` of `candidates`, picked one by one.

    Each pick maximizes `(1 - diversity) * relevance[i] - diversity *
    max(similarity[i, j] for j picked)` (the second term is 0 for the first
    pick); ties go to the candidate earlier in `candidates`.

    Args:
        candidates: Candidate indices in the order that breaks ties (the
            relevance order).
        relevance: Relevance per candidate index (used as given: scale it
            first, see `scaled`).
        similarity: Pairwise similarity, indexed by candidate index.
        diversity: λ in [0, 1]; 0 returns `candidates` cut to `count`.
        count: How many to pick; None picks all, in MMR order.

    Returns:
        The picked candidate indices, in pick order.
    """
    import numpy as np

    order = list(candidates)
    wanted = len(order) if count is None else min(count, len(order))
    if diversity == 0 or wanted < 2:
        return order[:wanted]
    gain = (1.0 - diversity) * np.asarray([relevance[i] for i in order], dtype=float)
    pairwise = similarity[np.ix_(order, order)]
    left = np.ones(len(order), dtype=bool)
    closest = np.zeros(len(order))  # nothing picked yet: no redundancy
    picked: list[int] = []
    for _ in range(wanted):
        value = np.where(left, gain - diversity * closest, -np.inf)
        best = int(np.argmax(value))  # the first of equals: ties keep order
        picked.append(order[best])
        left[best] = False
        row = pairwise[best]
        closest = row if len(picked) == 1 else np.maximum(closest, row)
    return picked


def displaced(relevance_order: Sequence[int], picked: Sequence[int]) -> list[int]:
    """Candidates the relevance order would have kept that diversity left out.

    The first `len(picked)` of `relevance_order` that are not in `picked`, in
    relevance order: each was dropped for `DIVERSITY_DROP`, not for `top_n`.
    """
    chosen = set(picked)
    return [i for i in relevance_order[: len(picked)] if i not in chosen]
