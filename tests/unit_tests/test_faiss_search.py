"""`store.faiss_index.search`: the few-query flat fast path gives FAISS's results."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from langchain_ce_rerank.store import faiss_index


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 32), dtype=np.float32)
    faiss.normalize_L2(x)
    return x


def _index(spec: str, metric: int, vectors: np.ndarray) -> faiss.Index:
    index = faiss_index.build(spec, vectors.shape[1], metric)
    if not index.is_trained:
        index.train(vectors)
    # Ids far from positions, so a position/id mix-up cannot pass.
    index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64) * 7 + 3)
    return index


@pytest.mark.parametrize("queries", [1, 5, 19, 25])
@pytest.mark.parametrize("k", [1, 10, 500])
def test_flat_inner_product_matches_faiss(queries: int, k: int) -> None:
    vectors = _vectors(500)
    index = _index("Flat", faiss.METRIC_INNER_PRODUCT, vectors)
    assert faiss_index.flat_inner_product(index) is not None  # the fast path
    query = _vectors(queries, seed=1)
    expected_scores, expected_ids = index.search(query, k)
    scores, ids = faiss_index.search(index, query, k)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    assert scores.dtype == np.float32
    assert ids.dtype == np.int64


def test_a_loaded_flat_index_takes_the_fast_path_too() -> None:
    index = _index("Flat", faiss.METRIC_INNER_PRODUCT, _vectors(50))
    loaded = faiss.deserialize_index(faiss.serialize_index(index))
    assert faiss_index.flat_inner_product(loaded) is not None


def test_ties_go_to_the_earlier_vector_in_every_copy_of_a_store() -> None:
    vectors = np.zeros((6, 4), dtype=np.float32)
    vectors[:, 0] = 1.0
    index = faiss_index.build("Flat", 4, faiss.METRIC_INNER_PRODUCT)
    index.add_with_ids(vectors, np.array([50, 10, 40, 5, 20, 30], dtype=np.int64))
    loaded = faiss.deserialize_index(faiss.serialize_index(index))
    for copy in (index, loaded):
        _, ids = faiss_index.search(copy, vectors[:1], 3)
        assert ids.tolist() == [[50, 10, 40]]


def test_fast_path_follows_removals() -> None:
    vectors = _vectors(300)
    index = _index("Flat", faiss.METRIC_INNER_PRODUCT, vectors)
    index.remove_ids(np.arange(0, 300, 3, dtype=np.int64) * 7 + 3)
    query = vectors[:4]  # includes removed vectors' exact matches
    expected = index.search(query, 20)
    got = faiss_index.search(index, query, 20)
    np.testing.assert_array_equal(got[1], expected[1])
    assert not set(got[1].ravel().tolist()) & set(
        (np.arange(0, 300, 3) * 7 + 3).tolist()
    )


@pytest.mark.parametrize(
    ("spec", "metric"),
    [("Flat", faiss.METRIC_L2), ("HNSW8", faiss.METRIC_INNER_PRODUCT)],
)
def test_other_indexes_go_to_faiss(spec: str, metric: int) -> None:
    vectors = _vectors(200)
    index = _index(spec, metric, vectors)
    assert faiss_index.flat_inner_product(index) is None
    query = vectors[:2]
    expected = index.search(query, 5)
    got = faiss_index.search(index, query, 5)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])
