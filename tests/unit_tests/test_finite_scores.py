"""NaN and infinite scores never come back: every scoring path raises, naming the model."""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from doubles import FakeClock, FunctionCrossEncoder, SlowCrossEncoder
from langchain_core.documents import Document

from langchain_ce_rerank import CrossEncoderCompressor, NonFiniteScoreError, Reranker
from langchain_ce_rerank.engine.finite import describe_model, require_finite

TEXTS = ["red apple", "green pear", "blue plum"]


def poisoned(bad: float, on: str = "green pear") -> FunctionCrossEncoder:
    """Scores 1.0, except `bad` for the text `on`."""
    return FunctionCrossEncoder(lambda q, t: bad if t == on else 1.0)


@pytest.mark.parametrize(
    ("bad", "counted"), [(math.nan, "1 NaN or missing"), (math.inf, "1 infinite")]
)
def test_a_scorer_returning_nan_or_inf_raises_naming_it(
    bad: float, counted: str
) -> None:
    engine = Reranker(model=poisoned(bad))
    with pytest.raises(NonFiniteScoreError) as caught:
        engine.score("fruit", TEXTS)
    err = caught.value
    assert f"returned {counted} score(s) among the 3 of this batch" in str(err)
    assert "FunctionCrossEncoder" in err.model
    assert err.dtype is None  # not a torch model
    assert (err.nan, err.inf, err.total) == (
        (1, 0, 3) if math.isnan(bad) else (0, 1, 3)
    )
    assert "must return one finite number per pair" in str(err)


def test_minus_infinity_is_refused_too() -> None:
    with pytest.raises(NonFiniteScoreError, match="1 infinite"):
        Reranker(model=poisoned(-math.inf)).rank("fruit", TEXTS)


def test_nothing_non_finite_is_cached_and_a_fixed_scorer_then_scores() -> None:
    state = {"bad": True}
    model = FunctionCrossEncoder(
        lambda q, t: math.nan if state["bad"] and t == "blue plum" else float(len(t))
    )
    engine = Reranker(model=model)
    with pytest.raises(NonFiniteScoreError):
        engine.score("fruit", TEXTS)
    assert engine.cache_info().currsize == 0
    state["bad"] = False
    assert engine.score("fruit", TEXTS) == [9.0, 10.0, 9.0]


def test_the_compressor_door_raises_rather_than_returning_nan() -> None:
    compressor = CrossEncoderCompressor(model=poisoned(math.nan), top_n=3)
    docs = [Document(page_content=t) for t in TEXTS]
    with pytest.raises(NonFiniteScoreError):
        compressor.compress_documents(docs, "fruit")


class AsyncNaN:
    """A scorer with its own `ascore`, as `RemoteCrossEncoder` has."""

    def score(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [math.nan for _ in text_pairs]

    async def ascore(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [math.nan if t == "red apple" else 0.0 for _, t in text_pairs]


async def test_the_async_path_raises_too() -> None:
    engine = Reranker(model=AsyncNaN())
    with pytest.raises(NonFiniteScoreError, match="AsyncNaN"):
        await engine.ascore_batch([("fruit", TEXTS)])


async def test_the_async_path_under_a_deadline_raises_too() -> None:
    engine = Reranker(model=AsyncNaN())
    with pytest.raises(NonFiniteScoreError, match="AsyncNaN"):
        await engine.ascore_batch([("fruit", TEXTS)], deadline_ms=60_000)


def test_the_deadline_path_raises_too() -> None:
    clock = FakeClock()
    model = SlowCrossEncoder(clock, 0.001, {"green pear": math.inf})
    engine = Reranker(model=model, clock=clock)
    with pytest.raises(NonFiniteScoreError, match="infinite"):
        engine.rank("fruit", TEXTS, deadline_ms=60_000)


class WithinScorer:
    """A deadline scorer: None is "not scored in time", NaN is a broken score."""

    def __init__(self, answer: list[float | None]) -> None:
        self.answer = answer

    def score(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [0.0 for _ in text_pairs]

    def score_within(
        self, text_pairs: Sequence[tuple[str, str]], seconds: float
    ) -> list[float | None]:
        return list(self.answer)


def test_a_deadline_scorers_none_is_unscored_but_its_nan_raises() -> None:
    late = Reranker(model=WithinScorer([2.0, None, 1.0]), top_n=3)
    results = late.rank("fruit", TEXTS, deadline_ms=1000)
    assert [(r.index, r.reranked) for r in results] == [
        (0, True),
        (2, True),
        (1, False),
    ]
    broken = Reranker(model=WithinScorer([2.0, math.nan, None]), top_n=3)
    with pytest.raises(NonFiniteScoreError, match="WithinScorer"):
        broken.rank("fruit", TEXTS, deadline_ms=1000)


def test_require_finite_converts_to_plain_floats_and_counts_what_is_wrong() -> None:
    import numpy as np

    scores = require_finite([np.float32(1.5), 2, np.float64(-3.0)], "m")
    assert scores == [1.5, 2.0, -3.0]
    assert all(type(s) is float for s in scores)
    with pytest.raises(NonFiniteScoreError) as caught:
        require_finite([None, "x", math.inf, 1.0, -math.inf], "m")
    assert (caught.value.nan, caught.value.inf, caught.value.total) == (2, 2, 5)


def test_the_error_survives_pickling_between_processes() -> None:
    with pytest.raises(NonFiniteScoreError) as caught:
        require_finite([math.nan], "some model")
    # Process pools (Ray, multiprocessing) pickle exceptions; our code never
    # pickles anything a user loads.
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (str(copy), copy.model, copy.nan, copy.total) == (
        str(caught.value),
        "some model",
        1,
        1,
    )


def test_describe_model_names_a_remote_scorers_url() -> None:
    class Remote:
        url = "http://127.0.0.1:9/rerank"
        model = "bge"

    assert describe_model(Remote()) == (
        "scorer test_finite_scores.test_describe_model_names_a_remote_scorers_url."
        "<locals>.Remote (model='bge', url='http://127.0.0.1:9/rerank')"
    )


# -- a real model, forced to overflow -------------------------------------------


def _scaled_head(model: Any, factor: float) -> None:
    import torch

    with torch.no_grad():
        model.model.classifier.weight.mul_(factor)


def _largest_head(model: Any) -> None:
    import torch

    with torch.no_grad():
        model.model.classifier.weight.fill_(torch.finfo(torch.float32).max)


def test_a_real_model_that_overflows_float32_raises_naming_model_and_dtype(
    standin_ce_path: Path,
) -> None:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(standin_ce_path), device="cpu")
    _largest_head(model)  # every weight 3.4e38: the logits overflow float32
    engine = Reranker(model=model)
    with pytest.raises(NonFiniteScoreError) as caught:
        engine.score("fruit", TEXTS)
    message = str(caught.value)
    assert caught.value.dtype == "float32"
    assert re.search(
        rf"model '{re.escape(str(standin_ce_path))}' \(torch backend, float32 on cpu\)",
        message,
    )
    assert "check the model files" in message


def test_float16_overflow_raises_and_names_bfloat16_where_float32_is_fine(
    standin_ce_path: Path,
) -> None:
    """sentence-transformers#3233, on CPU: a logit past float16's 65504."""
    import torch
    from sentence_transformers import CrossEncoder

    def loaded(dtype: torch.dtype) -> Any:
        model = CrossEncoder(
            str(standin_ce_path), device="cpu", model_kwargs={"dtype": dtype}
        )
        with torch.no_grad():
            model.model.classifier.bias.zero_()
        return model

    # Scale the head so that the largest float32 logit is 2e5, 3x float16's max.
    unscaled = Reranker(model=loaded(torch.float32)).score("fruit", TEXTS)
    factor = 2e5 / max(abs(s) for s in unscaled)
    scores: dict[torch.dtype, Any] = {}
    for dtype in (torch.float32, torch.float16):
        model = loaded(dtype)
        _scaled_head(model, factor)
        try:
            scores[dtype] = Reranker(model=model).score("fruit", TEXTS)
        except NonFiniteScoreError as err:
            scores[dtype] = err
    assert all(math.isfinite(s) for s in scores[torch.float32])
    assert max(abs(s) for s in scores[torch.float32]) > 65504
    err = scores[torch.float16]
    assert isinstance(err, NonFiniteScoreError)
    assert err.dtype == "float16"
    assert "float16 on cpu" in str(err)
    assert "load it with dtype='bfloat16'" in str(err)
    assert "sentence-transformers#3233" in str(err)
