"""Shaping the context in the engine: groups, the token budget, and drop reasons.

Scores come from table doubles and tokens from a counter double (one token
per whitespace-separated word), so every cut is checked exactly.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Hashable, Sequence
from pathlib import Path

import pytest
from doubles import TableCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank.engine import (
    DROP_REASONS,
    PER_CALL_OPTIONS,
    DroppedCandidate,
    RankingSettings,
    Reranker,
    ScoredText,
    Selection,
    result_metadata,
)
from langchain_ce_rerank.engine import shaping as shaping_module
from langchain_ce_rerank.engine.shaping import ShapingSettings, trim_to_tokens


class Words:
    """The counter double: one token per whitespace-separated word; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str) -> int:
        self.calls += 1
        return len(text.split())


def _scored(*scores: float) -> list[ScoredText]:
    return [ScoredText(float(score)) for score in scores]


def _engine(**settings: object) -> Reranker:
    return Reranker(model=TableCrossEncoder(), **settings)  # type: ignore[arg-type]


def _everyone_once(selection: Selection, count: int) -> None:
    kept = [r.index for r in selection.results]
    gone = [d.index for d in selection.dropped]
    assert sorted(kept + gone) == list(range(count))


# -- groups ---------------------------------------------------------------------


def test_one_result_per_group_the_best_first_and_top_n_goes_to_the_next_groups() -> (
    None
):
    engine = _engine(top_n=3, group_by="source")
    groups = ["a", "a", "b", "a", "c", "b"]
    picked = engine.select(_scored(9, 8, 7, 6, 5, 4), groups=groups)
    assert [r.index for r in picked.results] == [0, 2, 4]
    assert [r.rank for r in picked.results] == [1, 2, 3]
    assert [(d.index, d.reason) for d in picked.dropped] == [
        (1, "group_full"),
        (3, "group_full"),
        (5, "group_full"),
    ]
    _everyone_once(picked, 6)


def test_max_per_group_keeps_that_many_per_group() -> None:
    engine = _engine(top_n=None, group_by="source", max_per_group=2)
    picked = engine.select(_scored(9, 8, 7, 6), groups=["a", "a", "a", "b"])
    assert [r.index for r in picked.results] == [0, 1, 3]
    assert [(d.index, d.reason) for d in picked.dropped] == [(2, "group_full")]


def test_groups_follow_the_fused_order_with_rrf() -> None:
    engine = _engine(top_n=None, group_by="g", fusion="rrf", rrf_k=1)
    # By score 0 leads; fused with first-stage ranks [3, 2, 1], 1 and 2 lead.
    picked = engine.select(
        _scored(3.0, 2.0, 1.0), first_stage_ranks=[3, 1, 2], groups=["x", "x", "y"]
    )
    assert [r.index for r in picked.results] == [1, 2]
    assert picked.dropped == [DroppedCandidate(0, 3.0, "group_full")]


def test_rank_groups_plain_texts_by_a_function_of_the_text() -> None:
    engine = Reranker(model=TableCrossEncoder({"a1": 3, "a2": 2, "b1": 1}))
    kept = engine.rank("q", ["a1", "a2", "b1"], group_by=lambda text: text[0])
    assert [r.index for r in kept] == [0, 2]
    assert engine.group_by is None  # a per-call override


def test_a_group_function_returning_none_leaves_that_candidate_alone() -> None:
    table = {"a1": 3, "a2": 2, "x": 1, "y": 0.5}
    engine = Reranker(model=TableCrossEncoder(table), top_n=None)
    kept = engine.rank(
        "q", ["a1", "a2", "x", "y"], group_by=lambda t: t[0] if t[0] == "a" else None
    )
    assert [r.index for r in kept] == [0, 2, 3]


def test_rank_by_a_metadata_key_needs_the_groups() -> None:
    engine = Reranker(model=TableCrossEncoder({"a": 2, "b": 1}), group_by="source")
    with pytest.raises(ValueError, match=r"plain texts have no metadata.*groups="):
        engine.rank("q", ["a", "b"])
    kept = engine.rank("q", ["a", "b"], groups=["f", "f"])
    assert [r.index for r in kept] == [0]
    with pytest.raises(ValueError, match="groups has 1 items for 2 texts"):
        engine.rank("q", ["a", "b"], groups=["f"])


def test_select_says_when_group_by_has_no_groups() -> None:
    with pytest.raises(ValueError, match="needs each candidate's group"):
        _engine(group_by="source").select(_scored(1.0))


def test_a_missing_key_or_an_unhashable_group_is_an_error_naming_the_candidate() -> (
    None
):
    from langchain_ce_rerank.engine import group_keys

    metadata = [{"source": "a"}, {"path": "b"}]
    with pytest.raises(ValueError, match=r"document 1 has no metadata\['source'\]"):
        group_keys("source", metadata, lambda m: m, lambda i: f"document {i}")
    with pytest.raises(TypeError, match="document 0 the group \\['a'\\], a list"):
        group_keys(lambda m: [m["source"]], metadata, lambda m: m, "document {}".format)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_per_group": 2}, "max_per_group=2 needs group_by"),
        ({"group_by": 3}, "group_by must be a metadata key"),
        ({"group_by": ""}, "group_by must be a metadata key"),
        ({"group_by": "s", "max_per_group": 0}, "greater than or equal to 1"),
        ({"max_context_tokens": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_shaping_settings_fail_at_construction(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        RankingSettings(**settings)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=message):
        _engine(**settings)


def test_shaping_options_are_per_call_options_checked_like_top_n() -> None:
    assert {"group_by", "max_per_group", "max_context_tokens"} <= set(PER_CALL_OPTIONS)
    settings = RankingSettings(group_by="source")
    call = settings.for_call(max_per_group=3, max_context_tokens=100)
    assert (call.group_by, call.max_per_group, call.max_context_tokens) == (
        "source",
        3,
        100,
    )
    assert (settings.max_per_group, settings.max_context_tokens) == (None, None)
    assert settings.for_call(group_by=None).group_by is None
    with pytest.raises(ValueError, match="max_per_group=2 needs group_by"):
        RankingSettings().for_call(max_per_group=2)
    with pytest.raises(ValueError, match="max_per_group=2 needs group_by"):
        settings.for_call(group_by=None, max_per_group=2)
    with pytest.raises(ValueError, match="max_context_tokens must be a positive"):
        settings.for_call(max_context_tokens=-5)
    with pytest.raises(ValueError, match="max_per_group must be a positive"):
        settings.for_call(max_per_group=True)
    with pytest.raises(TypeError, match="token_counter"):
        settings.for_call(token_counter=len)


# -- the token budget --------------------------------------------------------------


def test_results_are_taken_in_order_until_the_budget_is_full() -> None:
    counter = Words()
    engine = _engine(top_n=None, max_context_tokens=5, token_counter=counter)
    texts = ["one two", "three four", "five six", "seven"]
    picked = engine.select(_scored(4, 3, 2, 1), contents=texts)
    assert [(r.index, r.tokens, r.cut) for r in picked.results] == [
        (0, 2, None),
        (1, 2, None),
    ]
    # "five six" does not fit the 1 token left, and a shorter one after it
    # does not jump the queue: the budget is full.
    assert [(d.index, d.reason) for d in picked.dropped] == [
        (2, "context_budget"),
        (3, "context_budget"),
    ]
    assert counter.calls == 3  # nothing past the full budget is counted


def test_a_result_alone_over_the_budget_is_cut_to_its_best_window() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta"
    window = (text.index("gamma"), text.index("zeta") + len("zeta"))
    engine = _engine(top_n=None, max_context_tokens=4, token_counter=Words())
    picked = engine.select([ScoredText(2.0, window)], contents=[text])
    [result] = picked.results
    assert result.cut == window
    assert result.content(text) == "gamma delta epsilon zeta"
    assert result.tokens == 4
    assert result_metadata(result)["context_cut"] == list(window)
    assert result_metadata(result)["context_tokens"] == 4


def test_a_window_still_over_the_budget_is_shortened_to_fit() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta"
    window = (text.index("beta"), len(text))
    engine = _engine(top_n=None, max_context_tokens=2, token_counter=Words())
    [result] = engine.select([ScoredText(2.0, window)], contents=[text]).results
    assert result.content(text) == "beta gamma"
    assert result.tokens == 2


def test_without_a_window_the_cut_keeps_the_start() -> None:
    text = "one two three four five"
    engine = _engine(top_n=None, max_context_tokens=3, token_counter=Words())
    [result] = engine.select(_scored(1.0), contents=[text]).results
    assert result.content(text) == "one two three"


def test_a_cut_result_takes_only_what_is_left_when_it_fits() -> None:
    texts = ["a b", "c d e f g h"]
    engine = _engine(top_n=None, max_context_tokens=5, token_counter=Words())
    picked = engine.select([ScoredText(3.0), ScoredText(2.0, (4, 11))], contents=texts)
    # "c d e f g h" (6) is over 5 alone: cut to its window "e f g h" (4),
    # which does not fit the 3 tokens left after "a b".
    assert [r.index for r in picked.results] == [0]
    assert picked.dropped[0].reason == "context_budget"


def test_the_window_is_not_used_when_the_model_read_another_text() -> None:
    text = "one two three four"
    scored_text = "TITLE one two three four"
    engine = _engine(top_n=None, max_context_tokens=2, token_counter=Words())
    [result] = engine.select(
        [ScoredText(1.0, (6, 13))],
        contents=[text],
        scored_texts=[scored_text],
    ).results
    assert result.content(text) == "one two"


@pytest.mark.parametrize("budget", [1, 2, 3, 5, 8, 13, 40])
def test_the_budget_is_never_exceeded(budget: int) -> None:
    counter = Words()
    texts = [
        "w " * 7,
        "x " * 2,
        "y " * 30,
        "z " * 4,
        "v",
    ]
    windows = [None, None, (10, 30), None, None]
    engine = _engine(top_n=None, max_context_tokens=budget, token_counter=counter)
    for scores in ([5, 4, 3, 2, 1], [1, 2, 3, 4, 5], [3, 5, 1, 4, 2]):
        picked = engine.select(
            [ScoredText(float(s), w) for s, w in zip(scores, windows, strict=True)],
            contents=texts,
        )
        returned = [r.content(texts[r.index]) for r in picked.results]
        assert sum(counter(t) for t in returned) <= budget
        assert [counter(t) for t in returned] == [r.tokens for r in picked.results]
        assert picked.results, "the best result is cut, never dropped"
        _everyone_once(picked, len(texts))


def test_trim_bisects_on_any_counter() -> None:
    text = "aaaa bbbb cccc dddd eeee"
    assert trim_to_tokens(text, (0, len(text)), 9, len) == (0, 9)
    # Not even the first word fits: cut inside it, by characters.
    assert trim_to_tokens(text, (5, len(text)), 2, len) == (5, 7)
    assert trim_to_tokens(text, (0, 4), 0, len) == (0, 0)


def test_a_counter_that_is_not_a_count_is_an_error() -> None:
    engine = _engine(max_context_tokens=5, token_counter=lambda text: -1)
    with pytest.raises(ValueError, match="token_counter returned -1"):
        engine.select(_scored(1.0), contents=["a"])
    engine = _engine(max_context_tokens=5, token_counter=lambda text: "3")
    with pytest.raises(ValueError, match="token_counter returned '3'"):
        engine.select(_scored(1.0), contents=["a"])


def test_the_budget_needs_the_contents() -> None:
    with pytest.raises(ValueError, match="contents="):
        _engine(max_context_tokens=5).select(_scored(1.0))


def test_the_default_counter_is_the_reranker_s_tokenizer(standin_ce_path: Path) -> None:
    engine = Reranker(model=str(standin_ce_path), max_context_tokens=6, top_n=None)
    tokenizer = engine.load_model().tokenizer  # type: ignore[union-attr]
    text = "Unbelievably, tokenizers split words into pieces."
    expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert engine.count_tokens(text) == expected > len(text.split())
    [result] = engine.select(_scored(1.0), contents=[text]).results
    kept = result.content(text)
    assert result.tokens == engine.count_tokens(kept) <= 6
    assert text.startswith(kept)


def test_a_scorer_without_a_tokenizer_counts_words() -> None:
    assert _engine().count_tokens("three short words") == 3


def test_rank_applies_the_budget_to_the_texts() -> None:
    engine = Reranker(
        model=TableCrossEncoder({"a b c": 2.0, "d e": 1.0}),
        top_n=None,
        token_counter=Words(),
    )
    assert [r.index for r in engine.rank("q", ["a b c", "d e"])] == [0, 1]
    kept = engine.rank("q", ["a b c", "d e"], max_context_tokens=4)
    assert [(r.index, r.tokens) for r in kept] == [(0, 3)]
    [[only]] = engine.rank_batch([("q", ["d e", "a b c"])], max_context_tokens=2)
    assert (only.index, only.cut, only.tokens) == (1, (0, 3), 2)


# -- drop reasons ------------------------------------------------------------------


def test_each_step_records_its_reason_in_ranked_order() -> None:
    engine = _engine(
        top_n=4,
        score_threshold=2.5,
        group_by="g",
        max_context_tokens=3,
        token_counter=Words(),
    )
    contents = ["a b", "c", "d e", "f", "g h", "i"]
    groups = ["x", "x", "y", "z", "w", "v"]
    picked = engine.select(_scored(9, 8, 7, 6, 2, 1), groups=groups, contents=contents)
    assert [r.index for r in picked.results] == [0]
    assert [(d.index, d.reason) for d in picked.dropped] == [
        (1, "group_full"),
        (2, "context_budget"),
        (3, "context_budget"),
        (4, "score_threshold"),
        (5, "top_n"),
    ]
    assert all(type(d.score) is float for d in picked.dropped)


def test_rank_and_order_still_return_only_the_results() -> None:
    engine = _engine(top_n=2)
    assert [r.index for r in engine.order(_scored(1, 3, 2))] == [1, 2]
    assert engine.select(_scored(1, 3, 2)).dropped == [
        DroppedCandidate(0, 1.0, "top_n")
    ]


def test_a_drop_reason_must_be_known_and_one_line_adds_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert set(DROP_REASONS) >= {
        "top_n",
        "score_threshold",
        "group_full",
        "context_budget",
        "diversity",
        "min_probability",
    }
    with pytest.raises(ValueError, match="unknown drop reason 'stale'"):
        DroppedCandidate(0, 1.0, "stale")
    monkeypatch.setitem(DROP_REASONS, "stale", "older than a newer result")
    assert DroppedCandidate(0, 1.0, "stale").explanation == (
        "older than a newer result"
    )


def test_the_shaping_docstring_example_runs() -> None:
    for obj in (ShapingSettings, DroppedCandidate, Selection):
        (block,) = re.findall(r"```python\n(.*?)```", obj.__doc__ or "", re.S)
        exec(compile(textwrap.dedent(block), f"<{obj.__name__}>", "exec"), {})


def test_the_module_names_what_it_exports() -> None:
    exported: Sequence[str] = shaping_module.__all__
    assert all(hasattr(shaping_module, name) for name in exported)
    groups: list[Hashable] = ["a"]
    assert shaping_module.per_group([0], groups, 1) == ([0], [])
