"""Every cut together: one drop reason per candidate, in `ranking.select`'s order.

Groups and the token budget beside diversity, min_probability and the
candidates a deadline left unscored. Scores are given (no model), tokens are
counted by a word-counting double, similarities by a fixed matrix.
"""

from __future__ import annotations

import math

import numpy as np
from doubles import TableCrossEncoder

from langchain_ce_rerank.engine import (
    PER_CALL_OPTIONS,
    Reranker,
    ScoreCalibration,
    ScoredText,
    ScoringIdentity,
    Selection,
    UnscoredText,
)
from langchain_ce_rerank.engine.probability import PlattMapping
from langchain_ce_rerank.engine.ranking import select

CALIBRATION = ScoreCalibration(
    mapping=PlattMapping(slope=1.0, intercept=0.0),
    fitted_for=ScoringIdentity(model="doubles.TableCrossEncoder"),
)


def _engine(**settings: object) -> Reranker:
    return Reranker(model=TableCrossEncoder(), **settings)  # type: ignore[arg-type]


def _words(text: str) -> int:
    return len(text.split())


def _reasons(selection: Selection) -> dict[int, str]:
    return {d.index: d.reason for d in selection.dropped}


def _everyone_once(selection: Selection, count: int) -> None:
    kept = [r.index for r in selection.results]
    assert sorted(kept + [d.index for d in selection.dropped]) == list(range(count))


def test_per_call_options_are_the_five_and_the_three_shaping_ones() -> None:
    assert set(PER_CALL_OPTIONS) == {
        "top_n",
        "score_threshold",
        "diversity",
        "deadline_ms",
        "min_probability",
        "group_by",
        "max_per_group",
        "max_context_tokens",
    }


def test_diversity_records_what_it_pushed_out_of_top_n() -> None:
    # 0 and 1 are near-copies; with diversity 2 takes 1's place in the top 2.
    similarity = np.eye(4)
    similarity[0, 1] = similarity[1, 0] = 0.99
    settings = _engine(top_n=2, diversity=0.6).for_call()
    picked = select(
        [ScoredText(s) for s in (4.0, 3.9, 3.0, 1.0)], settings, similarity=similarity
    )
    assert [r.index for r in picked.results] == [0, 2]
    assert _reasons(picked) == {1: "diversity", 3: "top_n"}
    _everyone_once(picked, 4)


def test_min_probability_drops_are_recorded_with_their_reason() -> None:
    engine = _engine(top_n=None, calibration=CALIBRATION, min_probability=0.5)
    picked = engine.select([ScoredText(s) for s in (2.0, -1.0, 1.0)])
    assert [r.index for r in picked.results] == [0, 2]
    assert _reasons(picked) == {1: "min_probability"}
    assert picked.dropped[0].explanation.startswith("relevance_probability below")


def test_unscored_candidates_count_against_their_group_and_fill_top_n() -> None:
    engine = _engine(top_n=3, group_by="source")
    scored = [ScoredText(5.0), UnscoredText(math.nan), UnscoredText(math.nan)]
    scored += [UnscoredText(math.nan)]
    picked = engine.select(scored, groups=["a", "a", "b", "c"])
    assert [(r.index, r.reranked) for r in picked.results] == [
        (0, True),
        (2, False),
        (3, False),
    ]
    assert [(d.index, d.reason, d.reranked) for d in picked.dropped] == [
        (1, "group_full", False)
    ]


def test_unscored_past_top_n_are_dropped_for_top_n() -> None:
    scored = [ScoredText(5.0), UnscoredText(math.nan), UnscoredText(math.nan)]
    picked = _engine(top_n=2).select(scored)
    assert [r.index for r in picked.results] == [0, 1]
    assert _reasons(picked) == {2: "top_n"}


def test_the_token_budget_counts_unscored_candidates_too() -> None:
    engine = _engine(top_n=None, max_context_tokens=5, token_counter=_words)
    scored = [ScoredText(5.0), UnscoredText(math.nan), UnscoredText(math.nan)]
    picked = engine.select(scored, contents=["one two", "three four five", "six"])
    assert [r.index for r in picked.results] == [0, 1]
    assert _reasons(picked) == {2: "context_budget"}


def test_a_deadline_never_returns_fewer_documents_under_groups() -> None:
    groups = ["a", "a", "b", "b", "c"]
    engine = _engine(top_n=3, group_by="source", score_threshold=0.0)
    full = engine.select(
        [ScoredText(s) for s in (3.0, 2.0, -1.0, 1.0, -2.0)], groups=groups
    )
    cut = engine.select(
        [ScoredText(3.0), ScoredText(2.0)] + [UnscoredText(math.nan)] * 3, groups=groups
    )
    assert len(cut.results) >= len(full.results)
    _everyone_once(cut, 5)
