"""`deadline_ms`: scoring in first-stage order until the next batch would pass it.

Every test injects a `FakeClock` and a slow double that advances it, so the
deadline's arithmetic is exact and no test reads or asserts wall-clock time.
"""

from __future__ import annotations

import asyncio
import math
import re
import textwrap
from collections.abc import Sequence

import pytest
from doubles import AsyncSlowCrossEncoder, FakeClock, SlowCrossEncoder
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from pydantic import ValidationError

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    Reranker,
    build_reranking_retriever,
)
from langchain_ce_rerank.engine import RankingSettings, result_metadata
from langchain_ce_rerank.engine.deadline import Budget, Pace

# First-stage order t0..t9; the double scores a text by its length, so the
# reranked order of any scored subset is known: longest first.
TEXTS = ["t0", "t1-", "t2--", "t3---", "t4----", "t5", "t6", "t7", "t8", "t9"]


def slow_engine(
    seconds_per_pair: float = 0.010, batch_size: int = 2, **settings: object
) -> tuple[Reranker, SlowCrossEncoder, FakeClock]:
    clock = FakeClock()
    model = SlowCrossEncoder(clock, seconds_per_pair)
    engine = Reranker(
        model=model, clock=clock, batch_size=batch_size, **{"top_n": None, **settings}
    )
    return engine, model, clock


def called_texts(model: SlowCrossEncoder) -> list[set[str]]:
    return [{text for _, text in call} for call in model.calls]


# -- the engine ------------------------------------------------------------------


def test_without_a_deadline_every_pair_goes_in_one_call() -> None:
    engine, model, _ = slow_engine()
    results = engine.rank("q", TEXTS)
    assert len(model.calls) == 1
    assert all(r.reranked for r in results)


def test_scoring_stops_before_the_batch_that_would_pass_the_deadline() -> None:
    engine, model, clock = slow_engine()
    # Batch 1 (no measurement yet) ends at 20 ms: 10 ms a pair. Batch 2 is
    # predicted to end at 40 ms, within 50; batch 3 at 60 ms: not started.
    results = engine.rank("q", TEXTS, deadline_ms=50)
    assert called_texts(model) == [{"t0", "t1-"}, {"t2--", "t3---"}]
    assert clock.now == pytest.approx(1000.040)
    assert [r.index for r in results] == [3, 2, 1, 0, 4, 5, 6, 7, 8, 9]
    assert [r.reranked for r in results] == [True] * 4 + [False] * 6
    assert [r.rank for r in results] == list(range(1, 11))
    assert all(math.isnan(r.score) for r in results[4:])
    assert results[4].to_dict()["score"] is None


def test_a_deadline_that_fits_every_batch_scores_everything() -> None:
    engine, model, _ = slow_engine()
    results = engine.rank("q", TEXTS, deadline_ms=100)  # 5 batches of 20 ms
    assert len(model.calls) == 5
    assert all(r.reranked for r in results)
    assert [r.index for r in results] == [r.index for r in engine.rank("q", TEXTS)]


def test_never_fewer_documents_than_without_a_deadline() -> None:
    for top_n in (1, 3, 6, 10):
        plain, _, _ = slow_engine(top_n=top_n)
        timed, _, _ = slow_engine(top_n=top_n)
        expected = plain.rank("q", TEXTS)
        got = timed.rank("q", TEXTS, deadline_ms=50)
        assert len(got) == len(expected) == top_n
    engine, _, _ = slow_engine(top_n=6)
    got = engine.rank("q", TEXTS, deadline_ms=50)
    # Four scored, then the unscored fill what top_n leaves, in first-stage order.
    assert [(r.index, r.reranked) for r in got][4:] == [(4, False), (5, False)]


def test_the_threshold_drops_only_scored_documents() -> None:
    engine, _, _ = slow_engine(top_n=3)
    # Of the scored four, only t3--- (5.0) passes; two unscored fill top_n.
    got = engine.rank("q", TEXTS, deadline_ms=50, score_threshold=5.0)
    assert [(r.index, r.reranked) for r in got] == [(3, True), (4, False), (5, False)]


def test_score_cache_hits_count_as_scored_wherever_they_are() -> None:
    engine, model, _ = slow_engine()
    engine.score("q", ["t8", "t9"])  # now in the cache
    model.calls.clear()
    results = engine.rank("q", TEXTS, deadline_ms=50)
    assert called_texts(model) == [{"t0", "t1-"}, {"t2--", "t3---"}]
    scored = {r.index for r in results if r.reranked}
    assert scored == {0, 1, 2, 3, 8, 9}


def test_a_repeated_text_is_scored_once_and_counts_for_both() -> None:
    engine, model, _ = slow_engine()
    texts = ["aa", "b", "aa", "c", "d", "e"]
    results = engine.rank("q", texts, deadline_ms=45)
    # Batch 1: aa, b; batch 2: c, d (the second "aa" is known), ending at
    # 40 ms; batch 3 (e) would end at 50 ms.
    assert called_texts(model) == [{"aa", "b"}, {"c", "d"}]
    assert {r.index for r in results if r.reranked} == {0, 1, 2, 3, 4}


def test_the_next_call_predicts_from_the_last_calls_batches() -> None:
    engine, model, _ = slow_engine()
    engine.rank("q", TEXTS, deadline_ms=15)  # nothing measured: batch 1 runs
    assert len(model.calls) == 1  # and overran: 20 ms > 15 ms
    results = engine.rank("q", ["x1", "x2", "x3"], deadline_ms=15)
    # 2 pairs at 10 ms each would end at 20 ms > 15: nothing is scored.
    assert len(model.calls) == 1
    assert [(r.index, r.reranked) for r in results] == [
        (0, False),
        (1, False),
        (2, False),
    ]
    engine.rank("q", ["y1", "y2", "y3"], deadline_ms=25)
    assert called_texts(model)[1:] == [{"y1", "y2"}]


def test_the_slowest_batch_sets_the_prediction() -> None:
    now = [0.0]
    budget = Budget(100, lambda: now[0], Pace())
    assert budget.allows(1000)  # nothing measured, time left: the first batch runs
    budget.record(4, 0.040)  # 10 ms a pair
    budget.record(4, 0.004)  # 1 ms a pair: the slower one still predicts
    assert budget.per_pair() == pytest.approx(0.010)
    assert budget.allows(10)  # 100 ms
    assert not budget.allows(11)
    now[0] = 0.1
    assert not budget.allows(0)  # the deadline has passed


def test_the_budget_docstring_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = re.findall(r"```python\n(.*?)```", Budget.__doc__ or "", re.S)[0]
    exec(textwrap.dedent(code), {})
    assert capsys.readouterr().out.split() == ["True", "True", "False"]


def test_a_deadline_spent_before_scoring_scores_nothing_and_does_not_raise() -> None:
    clock = FakeClock()
    model = SlowCrossEncoder(clock, 0.001)

    def slow_loader(name: object, **kwargs: object) -> SlowCrossEncoder:
        clock.advance(2.0)  # loading the model takes the whole budget
        return model

    engine = Reranker(model="some/model", loader=slow_loader, clock=clock, top_n=2)
    results = engine.rank("q", ["a", "bb", "ccc"], deadline_ms=500)
    assert model.calls == []
    assert [(r.index, r.reranked) for r in results] == [(0, False), (1, False)]


def test_passage_windows_of_one_document_stay_in_one_batch() -> None:
    engine, model, _ = slow_engine(
        long_documents="max_passage", passage_tokens=8, passage_overlap=2
    )
    long = " ".join(f"w{i}" for i in range(20))  # three or more windows
    results = engine.rank("q", ["short", long, "tiny"], deadline_ms=1000)
    window_call = next(call for call in model.calls if len(call) > 2)
    assert all(text in long for _, text in window_call)  # alone, whole
    assert all(r.reranked for r in results)


def test_several_queries_are_scored_rank_by_rank() -> None:
    engine, model, _ = slow_engine()
    scored = engine.score_batch(
        [("q1", ["a1", "a2", "a3"]), ("q2", ["b1", "b2", "b3"])], deadline_ms=50
    )
    assert [set(call) for call in model.calls] == [
        {("q1", "a1"), ("q2", "b1")},
        {("q1", "a2"), ("q2", "b2")},
    ]
    assert [[s.scored for s in item] for item in scored] == [
        [True, True, False],
        [True, True, False],
    ]
    # Still (score, passage) pairs, as before deadlines: unscored is NaN, None.
    score, passage = scored[0][2]
    assert math.isnan(score)
    assert passage is None
    assert len(scored[0][0]) == 2


async def test_an_awaitable_scorer_is_awaited_batch_by_batch() -> None:
    clock = FakeClock()
    model = AsyncSlowCrossEncoder(clock, 0.010)
    engine = Reranker(model=model, clock=clock, batch_size=2)
    scored = (await engine.ascore_batch([("q", TEXTS)], deadline_ms=50))[0]
    assert called_texts(model) == [{"t0", "t1-"}, {"t2--", "t3---"}]
    assert [s.scored for s in scored] == [True] * 4 + [False] * 6


async def test_a_plain_scorer_runs_in_a_thread_under_the_same_deadline() -> None:
    engine, model, _ = slow_engine()
    scored = (await engine.ascore_batch([("q", TEXTS)], deadline_ms=50))[0]
    assert called_texts(model) == [{"t0", "t1-"}, {"t2--", "t3---"}]
    assert sum(s.scored for s in scored) == 4


class _KeepsItsOwnDeadline:
    """A `DeadlineScorer` double: scores what fits and says None for the rest."""

    def __init__(self, fits: int) -> None:
        self.fits = fits
        self.asked: list[tuple[list[tuple[str, str]], float]] = []
        self.scored: list[list[tuple[str, str]]] = []

    def score(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.scored.append(list(text_pairs))
        return [float(len(text)) for _, text in text_pairs]

    def score_within(
        self, text_pairs: Sequence[tuple[str, str]], seconds: float, /
    ) -> list[float | None]:
        self.asked.append((list(text_pairs), seconds))
        return [
            float(len(text)) if i < self.fits else None
            for i, (_, text) in enumerate(text_pairs)
        ]


def test_a_scorer_that_keeps_its_own_deadline_gets_the_rest_in_order() -> None:
    clock = FakeClock()
    model = _KeepsItsOwnDeadline(fits=3)
    engine = Reranker(model=model, clock=clock, top_n=None)
    engine.score("q", ["t9"])  # a cache hit is not asked for again
    results = engine.rank("q", ["t0", "t1-", "t9", "t3---", "t4"], deadline_ms=250)
    pairs, seconds = model.asked[-1]
    assert [text for _, text in pairs] == ["t0", "t1-", "t3---", "t4"]
    assert seconds == pytest.approx(0.250)  # the fake clock did not move
    assert {r.index for r in results if r.reranked} == {0, 1, 2, 3}
    assert [r.index for r in results if not r.reranked] == [4]
    assert len(model.scored) == 1  # only the warm-up: score() is not used


@pytest.mark.parametrize("bad", [0, -5, math.nan, math.inf, True, "100"])
def test_a_bad_deadline_is_refused_in_the_callers_words(bad: object) -> None:
    engine, _, _ = slow_engine()
    with pytest.raises(ValueError, match="deadline_ms must be a number of millis"):
        engine.rank("q", ["a"], deadline_ms=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="deadline_ms must be a number of millis"):
        RankingSettings().for_call(deadline_ms=bad)
    with pytest.raises(ValidationError, match="deadline_ms"):
        CrossEncoderCompressor(model=engine.model, deadline_ms=bad)
    with pytest.raises(ValueError, match="deadline_ms must be a number of millis"):
        engine.score_batch([("q", ["a"])], deadline_ms=bad)  # type: ignore[arg-type]


def test_unscored_metadata_says_so_and_carries_no_score() -> None:
    engine, _, _ = slow_engine()
    result = engine.rank("q", TEXTS, deadline_ms=50)[-1]
    assert result_metadata(result) == {"reranked": False}
    assert result_metadata(result, score_field=True, first_stage_score=0.5) == {
        "retrieval_rank": 10,
        "retrieval_score": 0.5,
        "reranked": False,
    }


# -- the doors -------------------------------------------------------------------


def documents() -> list[Document]:
    return [
        Document(page_content=t, id=f"d{i}", metadata={"retrieval_rank": i + 1})
        for i, t in enumerate(TEXTS)
    ]


def test_the_compressor_marks_unscored_documents_and_leaves_its_input() -> None:
    engine, _, _ = slow_engine()
    compressor = CrossEncoderCompressor(model=engine, top_n=6, deadline_ms=50)
    docs = documents()
    out = compressor.compress_documents(docs, "q")
    assert [d.id for d in out] == ["d3", "d2", "d1", "d0", "d4", "d5"]
    assert [d.metadata.get("reranked", True) for d in out] == [True] * 4 + [False] * 2
    assert "relevance_score" not in out[4].metadata
    assert out[4].metadata["retrieval_rank"] == 5
    assert docs == documents()  # nothing written back
    # Per call: a larger budget, or none at all.
    assert all(
        "reranked" not in d.metadata
        for d in compressor.compress_documents(docs, "q2", deadline_ms=None)
    )


async def test_the_compressor_keeps_the_deadline_async() -> None:
    engine, model, _ = slow_engine()
    compressor = CrossEncoderCompressor(model=engine, top_n=None)
    out = await compressor.acompress_documents(documents(), "q", deadline_ms=50)
    assert len(model.calls) == 2
    assert sum(d.metadata.get("reranked", True) for d in out) == 4


def test_the_reranking_retriever_takes_deadline_ms_per_call_and_in_batch() -> None:
    engine, model, _ = slow_engine()
    docs = documents()
    retriever = build_reranking_retriever(
        docs,
        embedding=DeterministicFakeEmbedding(size=8),
        reranker=CrossEncoderCompressor(model=engine),
        k=10,
    )
    found = retriever.invoke("q", deadline_ms=50, top_n=None)
    assert len(found) == 10
    assert sum(d.metadata.get("reranked", True) for d in found) == 4
    configured = retriever.with_config(configurable={"deadline_ms": 50})
    assert sum(d.metadata.get("reranked", True) for d in configured.invoke("q2")) == 4
    model.calls.clear()
    # One stream for both queries, one budget for the call: 20 pairs, 2 a batch.
    batched = retriever.batch(["q3", "q4"], deadline_ms=50, top_n=None)
    assert len(model.calls) == 2
    assert [sum(d.metadata.get("reranked", True) for d in r) for r in batched] == [
        2,
        2,
    ]
    with pytest.raises(ValueError, match="deadline_ms must be"):
        retriever.invoke("q", deadline_ms=-1)


def test_the_llama_index_postprocessor_gives_unscored_nodes_no_score() -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_ce_rerank.llama_index import CrossEncoderRerank

    engine, _, _ = slow_engine()
    rerank = CrossEncoderRerank(model=engine, top_n=None)
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.5) for t in TEXTS]
    out = rerank.postprocess_nodes(nodes, query_str="q", deadline_ms=50)
    assert [n.score is None for n in out] == [False] * 4 + [True] * 6
    assert [n.node.text for n in out[4:]] == TEXTS[4:]
    assert out[5].node.metadata["reranked"] is False
    assert "reranked" in out[5].node.excluded_llm_metadata_keys
    again = asyncio.run(
        rerank.apostprocess_nodes(nodes, query_str="q2", deadline_ms=50)
    )
    assert sum(n.score is not None for n in again) == 4
