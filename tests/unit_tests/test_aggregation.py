"""A long document's score from its windows (`passage_aggregation`)."""

from __future__ import annotations

import random
import statistics

import pytest
from doubles import FunctionCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.engine.aggregation import (
    PASSAGE_AGGREGATIONS,
    aggregate,
    expected_max,
)

# Windows of 4 words; each word "sN" scores N, a window its best word.
TEXT = " ".join(f"s{n}" for n in (1, 1, 1, 1, 9, 1, 1, 1, 5, 1, 1, 1))


def _best_word(_: str, text: str) -> float:
    return max(float(word[1:]) for word in text.split())


def test_aggregations_of_known_scores() -> None:
    assert aggregate([0.1, 0.9, 0.5]) == (0.9, 1)
    assert aggregate([0.1, 0.9, 0.5], "mean_top2") == (pytest.approx(0.7), 1)
    score, top = aggregate([0.1, 0.9, 0.5], "max_debiased")
    assert top == 1
    assert score == pytest.approx(
        0.9 - statistics.stdev([0.1, 0.9, 0.5]) * 0.8694, abs=1e-3
    )
    for how in PASSAGE_AGGREGATIONS:  # one window scores as itself
        assert aggregate([0.3], how) == (0.3, 0)


def test_expected_max_is_close_to_the_exact_values() -> None:
    # Exact expectations of the maximum of n standard normals.
    for count, exact in ((1, 0.0), (2, 0.5642), (3, 0.8463), (5, 1.1630), (10, 1.5388)):
        assert expected_max(count) == pytest.approx(exact, abs=0.03)


def test_debiased_max_does_not_grow_with_window_count_on_noise() -> None:
    rng = random.Random(0)

    def mean_score(count: int, how: str) -> float:
        return statistics.mean(
            aggregate([rng.gauss(0, 1) for _ in range(count)], how)[0]  # type: ignore[arg-type]
            for _ in range(400)
        )

    plain = [mean_score(n, "max") for n in (1, 4, 16, 64)]
    debiased = [mean_score(n, "max_debiased") for n in (1, 4, 16, 64)]
    assert plain[-1] - plain[0] > 2.0  # max of 64 noise draws: ~2.4 higher
    assert max(debiased) - min(debiased) < 0.2


@pytest.mark.parametrize(
    ("how", "expected"), [("max", 9.0), ("mean_top2", 7.0), ("max_debiased", None)]
)
def test_the_engine_scores_documents_by_the_setting(
    how: str, expected: float | None
) -> None:
    engine = Reranker(
        model=FunctionCrossEncoder(_best_word),
        long_documents="max_passage",
        passage_tokens=9,  # 1 query word + 8 text words
        passage_overlap=0,
        passage_aggregation=how,
    )
    [scored] = engine.score_batch([("q", [TEXT])])[0]
    windows = [9.0, 5.0]
    assert scored.score == pytest.approx(
        expected if expected is not None else aggregate(windows, "max_debiased")[0]
    )
    start, end = scored.passage or (0, 0)
    assert "s9" in TEXT[start:end]  # the best window, whatever the aggregation


def test_a_wrong_aggregation_is_refused() -> None:
    with pytest.raises(ValidationError, match="passage_aggregation"):
        Reranker(model=FunctionCrossEncoder(_best_word), passage_aggregation="sum")


def test_identity_names_the_aggregation_only_when_not_max() -> None:
    model = FunctionCrossEncoder(_best_word)
    common = {"long_documents": "max_passage", "passage_tokens": 100}
    plain = Reranker(model=model, **common).scoring_identity()
    assert plain.passage_aggregation is None
    other = Reranker(model=model, passage_aggregation="mean_top2", **common)
    assert other.scoring_identity().passage_aggregation == "mean_top2"
    assert plain.differences(other.scoring_identity())
