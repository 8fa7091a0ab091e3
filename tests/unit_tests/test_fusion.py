"""Fusing dense and BM25 rankings (store/fusion.py)."""

from __future__ import annotations

import pytest

from langchain_ce_rerank.store.fusion import fuse

DENSE = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
BM25 = [("c", 12.0), ("d", 6.0), ("a", 2.0)]


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = {c.id: c for c in fuse(DENSE, BM25, alpha=0.5, rrf_k=60)}
    assert fused["a"].score == pytest.approx(1 / 61 + 1 / 63)
    assert fused["c"].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"].score == pytest.approx(1 / 62)
    assert fused["d"].score == pytest.approx(1 / 62)
    assert (fused["a"].dense_rank, fused["a"].bm25_rank) == (1, 3)
    assert (fused["a"].dense_score, fused["a"].bm25_score) == (0.9, 2.0)
    assert (fused["b"].bm25_score, fused["b"].bm25_rank) == (None, None)
    assert (fused["d"].dense_score, fused["d"].dense_rank) == (None, None)


def test_ties_keep_the_best_rank_then_dense_first() -> None:
    assert [c.id for c in fuse(DENSE, BM25, alpha=0.5, rrf_k=60)] == [
        "a",
        "c",
        "b",
        "d",
    ]


def test_rrf_k_changes_the_weight_of_top_ranks() -> None:
    dense, bm25 = [("x", 1.0), ("y", 0.5)], [("y", 3.0), ("z", 1.0)]
    small = {c.id: c.score for c in fuse(dense, bm25, alpha=0.5, rrf_k=0)}
    assert small["x"] == pytest.approx(1.0)
    assert small["y"] == pytest.approx(1 / 2 + 1)


def test_alpha_weighs_the_dense_side() -> None:
    assert [c.id for c in fuse(DENSE, BM25, alpha=1.0)][:3] == ["a", "b", "c"]
    assert [c.id for c in fuse(DENSE, BM25, alpha=0.0)][:3] == ["c", "d", "a"]
    fused = {c.id: c.score for c in fuse(DENSE, BM25, alpha=0.75, rrf_k=60)}
    assert fused["b"] == pytest.approx(1.5 / 62)
    assert fused["d"] == pytest.approx(0.5 / 62)


def test_weighted_sums_min_max_normalized_scores() -> None:
    fused = {c.id: c.score for c in fuse(DENSE, BM25, method="weighted", alpha=0.5)}
    assert fused["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert fused["b"] == pytest.approx(0.5 * (0.8 - 0.1) / 0.8)
    assert fused["c"] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    assert fused["d"] == pytest.approx(0.5 * 0.4)


def test_weighted_turns_distances_around() -> None:
    distances = [("near", 0.1), ("far", 0.9)]
    fused = fuse(
        distances, [], method="weighted", alpha=0.5, dense_higher_is_better=False
    )
    assert [(c.id, c.score) for c in fused] == [("near", 0.5), ("far", 0.0)]


def test_one_candidate_or_equal_scores_normalize_to_one() -> None:
    fused = fuse([("a", 0.3)], [("b", 4.0), ("c", 4.0)], method="weighted", alpha=0.5)
    assert [c.score for c in fused] == [0.5, 0.5, 0.5]


def test_an_empty_side_leaves_the_other_in_order() -> None:
    assert [c.id for c in fuse(DENSE, [])] == ["a", "b", "c"]
    assert [c.id for c in fuse([], BM25)] == ["c", "d", "a"]
    assert fuse([], []) == []


def test_bad_settings_say_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="'rrf' or 'weighted'"):
        fuse(DENSE, BM25, method="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        fuse(DENSE, BM25, alpha=1.5)
