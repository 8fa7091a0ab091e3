"""The framework-neutral engine on its own: scores, ranks, results, variants, async."""

from __future__ import annotations

import asyncio
import json
import math
import re
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from doubles import FunctionCrossEncoder, TableCrossEncoder
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    NonFiniteScoreError,
    Reranker,
    RerankResult,
)
from langchain_ce_rerank import engine as engine_module
from langchain_ce_rerank.engine import UNSET, RankingSettings, result_metadata

TABLE = {"a": 1.0, "bb": 3.0, "ccc": 2.0}


class _NumpyScorer:
    """Returns numpy scalars, as many real models do."""

    def score(self, text_pairs: Sequence[tuple[str, str]]) -> list[np.float32]:
        return [np.float32(len(text)) for _, text in text_pairs]


class _AsyncOnly:
    """An awaitable scorer whose blocking `score` must never be used."""

    def __init__(self) -> None:
        self.awaited: list[list[tuple[str, str]]] = []

    def score(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        raise AssertionError("score() blocked the event loop; ascore() was not used")

    async def ascore(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.awaited.append(list(text_pairs))
        await asyncio.sleep(0)
        return [float(len(text)) for _, text in text_pairs]


def test_rank_returns_typed_results_best_first() -> None:
    engine = Reranker(model=TableCrossEncoder(TABLE), top_n=2)
    results = engine.rank("q", ["a", "bb", "ccc"])
    assert results == [
        RerankResult(index=1, score=3.0, rank=1),
        RerankResult(index=2, score=2.0, rank=2),
    ]
    assert json.loads(json.dumps([r.to_dict() for r in results]))[0]["index"] == 1


def test_scores_are_plain_floats_even_from_numpy_models() -> None:
    engine = Reranker(model=_NumpyScorer(), top_n=None, activation="sigmoid")
    for result in engine.rank("q", ["a", "bbb"]):
        assert type(result.score) is float
    assert all(type(s) is float for s in engine.score("q", ["a", "bb"]))


def test_per_call_overrides_leave_the_settings_alone() -> None:
    engine = Reranker(model=TableCrossEncoder(TABLE), top_n=3)
    assert [r.index for r in engine.rank("q", ["a", "bb", "ccc"], top_n=1)] == [1]
    kept = engine.rank("q", ["a", "bb", "ccc"], score_threshold=1.5)
    assert [r.index for r in kept] == [1, 2]
    assert engine.top_n == 3
    with pytest.raises(ValueError, match="top_n must be a positive integer"):
        engine.rank("q", ["a"], top_n=0)


def test_score_batch_is_one_model_call_for_many_queries() -> None:
    model = TableCrossEncoder(TABLE)
    engine = Reranker(model=model)
    scored = engine.score_batch([("q1", ["a", "bb"]), ("q2", ["bb", "a", "a"])])
    assert [[s.score for s in item] for item in scored] == [[1.0, 3.0], [3.0, 1.0, 1.0]]
    assert len(model.calls) == 1
    assert len(model.calls[0]) == 4  # ("q2", "a") once


def test_with_settings_shares_the_model_and_raw_scores() -> None:
    model = TableCrossEncoder({"a": 0.0})
    logits = Reranker(model=model)
    logits.score("q", ["a"])
    probabilities = logits.with_settings(activation="sigmoid")
    assert probabilities.score("q", ["a"]) == [0.5]
    assert len(model.calls) == 1
    assert logits.activation == "none"


def test_use_cache_false_neither_reads_nor_writes_the_cache() -> None:
    model = TableCrossEncoder(TABLE)
    engine = Reranker(model=model)
    engine.score("q", ["a"])
    before = engine.cache_info()
    engine.score_batch([("q", ["a", "bb"])], use_cache=False)
    assert engine.cache_info() == before
    assert len(model.calls) == 2


def test_an_engine_is_not_wrapped_in_an_engine() -> None:
    with pytest.raises(ValidationError, match="already a Reranker"):
        Reranker(model=Reranker(model=TableCrossEncoder()))


def test_one_engine_shared_by_a_door_keeps_one_cache() -> None:
    model = TableCrossEncoder(TABLE)
    engine = Reranker(model=model)
    compressor = CrossEncoderCompressor(model=engine, top_n=1)
    docs = [Document(page_content=t) for t in TABLE]
    assert compressor.compress_documents(docs, "q")[0].page_content == "bb"
    engine.score("q", list(TABLE))  # all cached by the door's call
    assert len(model.calls) == 1
    with pytest.raises(ValidationError, match="set them on the engine"):
        CrossEncoderCompressor(model=engine, activation="sigmoid")


async def test_an_async_scorer_is_awaited_not_run_in_a_thread() -> None:
    scorer = _AsyncOnly()
    engine = Reranker(model=scorer)
    scored = await engine.ascore_batch([("q", ["bb", "a", "bb"])])
    assert [s.score for s in scored[0]] == [2.0, 1.0, 2.0]
    assert scorer.awaited == [[("q", "a"), ("q", "bb")]]  # shortest first, once
    await engine.ascore_batch([("q", ["a"])])
    assert len(scorer.awaited) == 1  # served from the cache
    compressor = CrossEncoderCompressor(model=scorer, top_n=1)
    docs = [Document(page_content="a"), Document(page_content="ccc")]
    best = await compressor.acompress_documents(docs, "q")
    assert [d.page_content for d in best] == ["ccc"]


async def test_a_blocking_model_runs_off_the_event_loop() -> None:
    release = threading.Event()

    def slow(query: str, text: str) -> float:
        if not release.wait(timeout=30):
            raise RuntimeError("the event loop was blocked while scoring")
        return 1.0

    engine = Reranker(model=FunctionCrossEncoder(slow))
    task = asyncio.ensure_future(engine.ascore_batch([("q", ["a"])]))
    await asyncio.sleep(0.01)  # the loop runs while the model waits
    release.set()
    assert [s.score for s in (await task)[0]] == [1.0]


def test_nan_raises_and_sigmoid_extremes_stay_finite() -> None:
    engine = Reranker(
        model=FunctionCrossEncoder(lambda q, t: {"y": -800.0, "x": 800.0}[t]),
        top_n=None,
        activation="sigmoid",
    )
    results = engine.rank("q", ["y", "x"])
    assert [(r.index, r.score) for r in results] == [(1, 1.0), (0, 0.0)]
    # A NaN score is never ranked (last or anywhere): see test_finite_scores.py.
    broken = engine.with_settings(
        model=FunctionCrossEncoder(lambda q, t: {"n": math.nan, "x": 800.0}[t])
    )
    with pytest.raises(NonFiniteScoreError, match="1 NaN"):
        broken.rank("q", ["n", "x"])


def test_truncate_keeps_the_first_tokens(standin_ce_path: Path) -> None:
    words = Reranker(model=TableCrossEncoder())
    assert words.truncate(["a b c d", "a b"], 3) == ["a b c", "a b"]
    with pytest.raises(ValueError, match="max_tokens must be at least 1"):
        words.truncate(["a"], 0)
    engine = Reranker(model=str(standin_ce_path), device="cpu")
    tokenizer = engine.load_model().tokenizer  # type: ignore[union-attr]
    text = "Unbelievably long words tokenize into several pieces each."
    [cut] = engine.truncate([text], 4)
    assert text.startswith(cut)
    assert len(tokenizer(cut, add_special_tokens=False)["input_ids"]) == 4


async def test_a_door_checks_each_query_once(query_checks: list[object]) -> None:
    compressor = CrossEncoderCompressor(model=TableCrossEncoder(TABLE))
    docs = [Document(page_content=t) for t in TABLE]
    compressor.compress_documents(docs, "q")
    assert query_checks == ["q"]
    await compressor.acompress_documents(docs, "async q")
    assert query_checks[1:] == ["async q"]
    compressor.compress_documents_batch([(docs, "q1"), (docs[:1], "q2")])
    assert query_checks[2:] == ["q1", "q2"]
    with pytest.raises(ValueError, match="query is empty"):
        compressor.compress_documents(docs, " ")
    assert query_checks[4:] == [" "]


@pytest.mark.parametrize(
    "name",
    [
        "RankingSettings",
        "RerankResult",
        "Reranker",
        "ScoringSettings",
        "result_metadata",
    ],
)
def test_engine_docstring_examples_run(name: str) -> None:
    doc = getattr(engine_module, name).__doc__ or ""
    (block,) = re.findall(r"```python\n(.*?)```", doc, re.S)
    exec(compile(textwrap.dedent(block), f"<{name} docstring>", "exec"), {})


def test_for_call_resolves_overrides_and_rejects_the_rest() -> None:
    settings = RankingSettings(top_n=5, score_threshold=0.5, fusion="rrf")
    call = settings.for_call(top_n=None, score_threshold=UNSET)
    assert (call.top_n, call.score_threshold, call.fusion) == (None, 0.5, "rrf")
    assert settings.top_n == 5
    with pytest.raises(TypeError, match=r"\['fusion'\].*'top_n', 'score_threshold'"):
        settings.for_call(fusion="none")
    with pytest.raises(ValueError, match="score_threshold must be a number"):
        settings.for_call(score_threshold="high")


def test_result_metadata_for_doors_with_and_without_a_score_field() -> None:
    fused = RerankResult(index=1, score=2.0, rank=1, passage=(3, 9), fused_score=0.1)
    assert result_metadata(fused) == {
        "relevance_score": 2.0,
        "fused_score": 0.1,
        "relevance_passage": [3, 9],
    }
    plain = RerankResult(index=1, score=2.0, rank=1)
    assert result_metadata(plain, score_field=True, first_stage_score=None) == {
        "retrieval_rank": 2
    }
    assert result_metadata(plain, score_field=True, first_stage_score=0.5) == {
        "retrieval_rank": 2,
        "retrieval_score": 0.5,
    }
