"""Brute-force references for the store's three rankings, and tie-tolerant checks.

Written from the definitions, sharing no code with `langchain_ce_rerank.store`,
so the store's results can be compared with them:

- `cosine_scores`: cosine similarity of every document to the query, with the
  test's own embedding, in float64;
- `bm25_scores`: BM25 as `bm25s` scores by default (`method="lucene"`,
  `k1=1.5`, `b=0.75`): for each query term t (repeated terms count again),
  `idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))` with
  `idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))`, over every stored document
  (a filter drops documents after scoring; it never changes N, df or avgdl);
- `rrf`: weighted Reciprocal Rank Fusion with the documented defaults
  (dense weight 0.7, `rrf_k` 10): `1.4 / (10 + dense_rank) + 0.6 / (10 + bm25_rank)`.

Texts in these tests are lowercase words of two or more letters separated by
spaces, so `terms` (split, minus the stopwords the tests use) is how the
store's default `BM25Settings` tokenizes them too.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

K1 = 1.5
B = 0.75
RRF_K = 10
DENSE_WEIGHT = 0.7
# English stopwords (bm25s's list) that the tests put in texts and queries.
STOPWORDS = frozenset({"the", "is", "on"})


def terms(text: str) -> list[str]:
    """The BM25 terms of a text made of lowercase words."""
    return [word for word in text.split() if word not in STOPWORDS]


def bm25_scores(texts: Mapping[str, str], query: str) -> dict[str, float]:
    """BM25 score of each document holding a query term (others are absent)."""
    docs = {doc_id: Counter(terms(text)) for doc_id, text in texts.items()}
    count = len(docs)
    if not count:
        return {}
    lengths = {doc_id: sum(tf.values()) for doc_id, tf in docs.items()}
    average = sum(lengths.values()) / count
    scores: dict[str, float] = {}
    for term in terms(query):
        holders = [doc_id for doc_id, tf in docs.items() if term in tf]
        if not holders:
            continue
        df = len(holders)
        idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
        for doc_id in holders:
            tf = docs[doc_id][term]
            norm = K1 * (1 - B + B * lengths[doc_id] / average)
            scores[doc_id] = scores.get(doc_id, 0.0) + idf * tf / (tf + norm)
    return scores


def cosine_scores(
    embedding: Embeddings, texts: Mapping[str, str], query: str
) -> dict[str, float]:
    """Cosine similarity of each document's text to the query."""
    if not texts:
        return {}
    ids = list(texts)
    matrix = np.asarray(embedding.embed_documents([texts[i] for i in ids]), float)
    vector = np.asarray(embedding.embed_query(query), float)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    vector /= np.linalg.norm(vector)
    return dict(zip(ids, (matrix @ vector).tolist(), strict=True))


def rrf(ranks: Sequence[int | None]) -> float:
    """The fused RRF score from the document's (dense, BM25) ranks (None: absent)."""
    weights = (2 * DENSE_WEIGHT, 2 * (1 - DENSE_WEIGHT))
    return sum(
        weight / (RRF_K + rank)
        for weight, rank in zip(weights, ranks, strict=True)
        if rank is not None
    )


def check_top_k(
    got: Sequence[tuple[str, float]],
    reference: Mapping[str, float],
    k: int,
    *,
    tolerance: float,
    what: str,
) -> None:
    """Assert `got` is a top-k of `reference` (higher is better), whatever ties.

    Holds exactly when: min(k, len(reference)) distinct results, each with its
    reference score, best first, and nothing scoring above the last one left out.
    """
    ids = [doc_id for doc_id, _ in got]
    assert len(ids) == len(set(ids)), f"{what}: an id returned twice: {ids}"
    assert len(got) == min(k, len(reference)), (
        f"{what}: {len(got)} results for k={k} and {len(reference)} that match"
    )
    for doc_id, score in got:
        assert doc_id in reference, f"{what}: {doc_id!r} should not match"
        assert math.isclose(score, reference[doc_id], abs_tol=tolerance), (
            f"{what}: {doc_id!r} scored {score}, reference {reference[doc_id]}"
        )
    scores = [score for _, score in got]
    for better, worse in itertools.pairwise(scores):
        assert better >= worse - tolerance, f"{what}: not best first: {got}"
    if got:
        last = scores[-1]
        missing = {
            doc_id
            for doc_id, score in reference.items()
            if score > last + tolerance and doc_id not in ids
        }
        assert not missing, f"{what}: better documents left out: {missing}"


def tie_ranks(reference: Mapping[str, float], tolerance: float) -> dict[str, range]:
    """The ranks (1-based) each document may hold in a best-first ranking.

    A document ties with those within `tolerance` of its score; the tied group
    may come in any order, so each member may hold any rank the group spans.
    """
    spans = {}
    for doc_id, score in reference.items():
        above = sum(1 for s in reference.values() if s > score + tolerance)
        level = sum(1 for s in reference.values() if s >= score - tolerance)
        spans[doc_id] = range(above + 1, level + 1)
    return spans
