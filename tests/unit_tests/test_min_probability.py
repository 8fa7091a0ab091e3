"""`relevance_probability` and `min_probability` through the engine and every door.

A table double gives each text a known raw score and a Platt calibration of
slope 1, intercept 0 maps it to `sigmoid(score)`, so every probability and
every cut is known in advance.
"""

from __future__ import annotations

import logging
import math

import pytest
from doubles import AxisEmbeddings, FakeClock, SlowCrossEncoder, TableCrossEncoder
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    FaissVectorStore,
    RerankingRetriever,
    ScoreCalibration,
    build_reranking_retriever,
)
from langchain_ce_rerank.engine import (
    RankingSettings,
    Reranker,
    ScoringIdentity,
    result_metadata,
)
from langchain_ce_rerank.engine.probability import PlattMapping
from langchain_ce_rerank.engine.ranking import probability_cut

SCORES = {"alpha": 3.0, "beta": 1.0, "gamma": -1.0, "delta": -3.0}
TEXTS = list(SCORES)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


PROBABILITY = {text: _sigmoid(score) for text, score in SCORES.items()}
# alpha 0.953, beta 0.731, gamma 0.269, delta 0.047

CALIBRATION = ScoreCalibration(
    mapping=PlattMapping(slope=1.0, intercept=0.0),
    fitted_for=ScoringIdentity(model="doubles.TableCrossEncoder"),
)


def docs() -> list[Document]:
    return [Document(page_content=t, id=t) for t in TEXTS]


def compressor(**settings: object) -> CrossEncoderCompressor:
    return CrossEncoderCompressor(
        model=TableCrossEncoder(SCORES), calibration=CALIBRATION, **settings
    )


# -- the engine -----------------------------------------------------------------


def test_each_result_carries_its_probability_and_min_probability_cuts_last() -> None:
    engine = Reranker(
        model=TableCrossEncoder(SCORES), top_n=None, calibration=CALIBRATION
    )
    ranked = engine.rank("q", TEXTS)
    assert [TEXTS[r.index] for r in ranked] == ["alpha", "beta", "gamma", "delta"]
    assert [r.probability for r in ranked] == pytest.approx(
        [PROBABILITY[t] for t in ["alpha", "beta", "gamma", "delta"]]
    )
    assert all(type(r.probability) is float for r in ranked)
    cut = engine.rank("q", TEXTS, min_probability=0.5)
    assert [TEXTS[r.index] for r in cut] == ["alpha", "beta"]
    # After top_n and score_threshold: top_n=1 keeps alpha, then the cut.
    assert [r.index for r in engine.rank("q", TEXTS, top_n=1, min_probability=0.5)] == [
        0
    ]
    assert (
        engine.rank("q", TEXTS, score_threshold=2.0, min_probability=0.1)[0].index == 0
    )
    assert len(engine.rank_batch([("q", TEXTS)] * 2, min_probability=0.7)[1]) == 2


def test_without_a_calibration_there_is_no_probability() -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), top_n=None)
    assert all(r.probability is None for r in engine.rank("q", TEXTS))
    assert "relevance_probability" not in result_metadata(engine.rank("q", TEXTS)[0])


def test_min_probability_without_a_calibration_is_refused_saying_how() -> None:
    with pytest.raises(
        ValidationError, match=r"min_probability=0\.5 needs a calibration"
    ):
        Reranker(model=TableCrossEncoder(SCORES), min_probability=0.5)
    engine = Reranker(model=TableCrossEncoder(SCORES))
    with pytest.raises(ValueError, match=r"ScoreCalibration\.load"):
        engine.rank("q", TEXTS, min_probability=0.5)
    with pytest.raises(ValueError, match="needs a calibration"):
        RankingSettings().for_call(min_probability=0.2)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, "0.5", True])
def test_a_min_probability_per_call_that_is_not_a_probability_is_refused(
    bad: object,
) -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), calibration=CALIBRATION)
    with pytest.raises(ValueError, match="min_probability must be a probability"):
        engine.rank("q", TEXTS, min_probability=bad)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_a_min_probability_setting_outside_0_to_1_is_refused(bad: float) -> None:
    with pytest.raises(ValidationError, match="min_probability"):
        Reranker(
            model=TableCrossEncoder(SCORES),
            calibration=CALIBRATION,
            min_probability=bad,
        )


def test_activation_changes_the_score_not_the_probability() -> None:
    logits = Reranker(
        model=TableCrossEncoder(SCORES), top_n=None, calibration=CALIBRATION
    )
    sigmoid = logits.with_settings(activation="sigmoid")
    for a, b in zip(logits.rank("q", TEXTS), sigmoid.rank("q", TEXTS), strict=True):
        assert a.score != b.score
        assert a.probability == pytest.approx(b.probability, abs=1e-12)


def test_when_nothing_clears_it_the_result_is_empty_and_a_warning_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), top_n=3, calibration=CALIBRATION)
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank"):
        assert engine.rank("q", TEXTS, min_probability=0.99) == []
    [record] = [r for r in caplog.records if "min_probability" in r.getMessage()]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "none of the 3 candidates reached min_probability=0.99" in message
    assert f"best relevance_probability was {PROBABILITY['alpha']:.3f}" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank"):
        engine.rank("q", TEXTS, min_probability=0.5)  # something cleared it
        engine.rank("q", [], min_probability=0.5)  # nothing to drop
    assert not [r for r in caplog.records if "min_probability" in r.getMessage()]


def test_the_probability_cut_reports_what_it_dropped() -> None:
    # (kept, dropped): the dropped ones were dropped for "min_probability".
    probabilities = [0.9, 0.2, math.nan, 0.6]
    assert probability_cut([3, 0, 1, 2], probabilities, 0.5) == ([3, 0], [1, 2])


# -- LangChain ------------------------------------------------------------------


def test_the_compressor_writes_relevance_probability_and_cuts_per_call() -> None:
    reranker = compressor(top_n=None)
    out = reranker.compress_documents(docs(), "q")
    assert [d.metadata["relevance_probability"] for d in out] == pytest.approx(
        [PROBABILITY[d.id] for d in out]
    )
    assert [
        d.id for d in reranker.compress_documents(docs(), "q", min_probability=0.5)
    ] == [
        "alpha",
        "beta",
    ]
    strict = compressor(top_n=None, min_probability=0.9)
    assert [d.id for d in strict.compress_documents(docs(), "q")] == ["alpha"]
    # A call's own value wins; None turns the cut off for that call.
    assert len(strict.compress_documents(docs(), "q", min_probability=None)) == 4
    assert [len(x) for x in strict.compress_documents_batch([(docs(), "q")] * 2)] == [
        1,
        1,
    ]
    scored = strict.score_documents(docs(), "q")
    assert [d.id for d in strict.order(docs(), scored, min_probability=0.2)] == [
        "alpha",
        "beta",
        "gamma",
    ]


async def test_the_async_compressor_cuts_alike() -> None:
    out = await compressor(top_n=None).acompress_documents(
        docs(), "q", min_probability=0.5
    )
    assert [d.id for d in out] == ["alpha", "beta"]
    assert "relevance_probability" in out[0].metadata


def test_model_copy_checks_what_the_constructor_checks() -> None:
    plain = CrossEncoderCompressor(model=TableCrossEncoder(SCORES))
    with pytest.raises(ValidationError, match="needs a calibration"):
        plain.model_copy(update={"min_probability": 0.5})
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        compressor().model_copy(update={"min_probability": 2.0})
    calibrated = plain.model_copy(
        update={"calibration": CALIBRATION, "min_probability": 0.5}
    )
    assert [d.id for d in calibrated.compress_documents(docs(), "q")] == [
        "alpha",
        "beta",
    ]


def _retriever(**settings: object) -> RerankingRetriever:
    words = ["alpha", "beta", "gamma", "delta"]
    store = FaissVectorStore(AxisEmbeddings(words))
    store.add_documents(docs())
    return build_reranking_retriever(
        vectorstore=store,
        reranker=TableCrossEncoder(SCORES),
        k=4,
        top_n=None,
        calibration=CALIBRATION,
        **settings,
    )


def test_the_reranking_retriever_takes_min_probability_per_call_and_configurable() -> (
    None
):
    retriever = _retriever()
    assert len(retriever.invoke("alpha")) == 4
    assert [d.id for d in retriever.invoke("alpha", min_probability=0.5)] == [
        "alpha",
        "beta",
    ]
    strict = retriever.with_config(configurable={"min_probability": 0.9})
    assert [d.id for d in strict.invoke("alpha")] == ["alpha"]
    batched = retriever.batch(["alpha", "beta"], min_probability=0.5)
    assert [[d.id for d in result] for result in batched] == [["alpha", "beta"]] * 2
    default = _retriever(min_probability=0.7)
    assert [d.id for d in default.invoke("alpha")] == ["alpha", "beta"]


async def test_the_reranking_retriever_cuts_asynchronously_too() -> None:
    out = await _retriever().ainvoke("alpha", min_probability=0.5)
    assert [d.id for d in out] == ["alpha", "beta"]


def test_evaluation_ranks_every_candidate_whatever_min_probability_says() -> None:
    from langchain_ce_rerank import evaluate

    pipeline = _retriever(min_probability=0.99)
    report = evaluate(pipeline, {"q1": "alpha"}, {"q1": {"delta": 1}})
    reranked = [c for c in report.configurations if c.name != c.first_stage]
    assert [c.name for c in reranked] == [
        f"{stage} + rerank{fused}"
        for stage in ("dense", "bm25", "hybrid")
        for fused in ("", ", RRF")
    ]
    for config in reranked:  # nothing cut: every candidate its stage found
        stage = {c.name: c for c in report.configurations}[config.first_stage]
        assert set(config.run["q1"]) == set(stage.run["q1"])
    dense = {c.name: c for c in reranked}["dense + rerank"]
    assert set(dense.run["q1"]) == set(TEXTS)
    assert report.reranker_scores["q1"] == SCORES


def test_the_reported_scores_are_those_of_the_first_first_stage_asked_for() -> None:
    from langchain_ce_rerank import evaluate

    pipeline = _retriever()
    queries, qrels = {"q1": "alpha"}, {"q1": {"alpha": 1}}
    # BM25 finds only the document with the query's word; dense finds all four.
    bm25_first = evaluate(pipeline, queries, qrels, first_stages=("bm25", "dense"))
    assert bm25_first.reranker_scores["q1"] == {"alpha": SCORES["alpha"]}
    dense_first = evaluate(pipeline, queries, qrels, first_stages=("dense", "bm25"))
    assert dense_first.reranker_scores["q1"] == SCORES


# -- with a deadline -------------------------------------------------------------

# SlowCrossEncoder scores a text by its length: t3--- 5, t2-- 4, t1- 3, t0 2.
# This Platt curve maps 5 to 0.62, 4 to 0.38, 3 to 0.18 and 2 to 0.08.
DEADLINE_TEXTS = ["t0", "t1-", "t2--", "t3---", "t4----", "t5", "t6", "t7"]
SLOW_CALIBRATION = ScoreCalibration(
    mapping=PlattMapping(slope=1.0, intercept=-4.5),
    fitted_for=ScoringIdentity(model="doubles.SlowCrossEncoder"),
)


def _slow(**settings: object) -> Reranker:
    # 10 ms a pair, 2 a batch: deadline_ms=50 scores the first four only.
    clock = FakeClock()
    return Reranker(
        model=SlowCrossEncoder(clock, 0.010),
        clock=clock,
        batch_size=2,
        calibration=SLOW_CALIBRATION,
        **{"top_n": None, **settings},
    )


def test_min_probability_drops_only_scored_documents_under_a_deadline() -> None:
    engine = _slow(top_n=3)
    got = engine.rank("q", DEADLINE_TEXTS, deadline_ms=50, min_probability=0.5)
    # Of the scored four only t3--- (0.62) clears 0.5; two unscored fill top_n.
    assert [(r.index, r.reranked) for r in got] == [(3, True), (4, False), (5, False)]
    assert got[0].probability == pytest.approx(_sigmoid(0.5))
    assert [r.probability for r in got[1:]] == [None, None]
    unscored = result_metadata(got[1])
    assert unscored == {"reranked": False}  # no score, so no probability


def test_a_deadline_never_returns_fewer_documents_with_min_probability() -> None:
    for top_n in (1, 2, 3, 6, None):
        for min_probability in (0.1, 0.5, 0.99):
            plain = _slow(top_n=top_n).rank(
                "q", DEADLINE_TEXTS, min_probability=min_probability
            )
            timed = _slow(top_n=top_n).rank(
                "q", DEADLINE_TEXTS, deadline_ms=50, min_probability=min_probability
            )
            assert len(timed) >= len(plain), (top_n, min_probability)


def test_no_empty_result_warning_while_unscored_documents_follow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = _slow(top_n=3)
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank"):
        got = engine.rank("q", DEADLINE_TEXTS, deadline_ms=50, min_probability=0.99)
    assert [(r.index, r.reranked) for r in got] == [
        (4, False),
        (5, False),
        (6, False),
    ]
    assert not [r for r in caplog.records if "No result" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank"):
        assert _slow(top_n=3).rank("q", DEADLINE_TEXTS, min_probability=0.99) == []
    assert [r for r in caplog.records if "No result" in r.getMessage()]


def test_the_compressor_keeps_unscored_documents_under_min_probability() -> None:
    engine = _slow()
    door = CrossEncoderCompressor(model=engine, top_n=3, calibration=SLOW_CALIBRATION)
    documents = [Document(page_content=t, id=t) for t in DEADLINE_TEXTS]
    got = door.compress_documents(documents, "q", deadline_ms=50, min_probability=0.5)
    assert [d.id for d in got] == ["t3---", "t4----", "t5"]
    assert got[0].metadata["relevance_probability"] == pytest.approx(_sigmoid(0.5))
    assert [d.metadata.get("reranked", True) for d in got] == [True, False, False]
    assert all("relevance_probability" not in d.metadata for d in got[1:])


# -- LlamaIndex -----------------------------------------------------------------


def test_the_llama_index_postprocessor_cuts_and_hides_the_probability_from_the_llm() -> (
    None
):
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    from langchain_ce_rerank.llama_index import CrossEncoderRerank

    rerank = CrossEncoderRerank(
        model=TableCrossEncoder(SCORES), top_n=None, calibration=CALIBRATION
    )
    nodes = [NodeWithScore(node=TextNode(text=t, id_=t), score=0.5) for t in TEXTS]
    out = rerank.postprocess_nodes(nodes, query_str="q", min_probability=0.5)
    assert [n.node.node_id for n in out] == ["alpha", "beta"]
    meta = out[0].node.metadata
    assert meta["relevance_probability"] == pytest.approx(PROBABILITY["alpha"])
    assert "relevance_probability" not in out[0].node.get_content(MetadataMode.LLM)
    assert len(rerank.postprocess_nodes(nodes, query_str="q")) == 4
    restored = CrossEncoderRerank.from_dict(
        {**rerank.to_dict(), "model": TableCrossEncoder(SCORES)}
    )
    assert restored.calibration == CALIBRATION


async def test_the_llama_index_postprocessor_cuts_asynchronously_too() -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_ce_rerank.llama_index import CrossEncoderRerank

    rerank = CrossEncoderRerank(
        model=TableCrossEncoder(SCORES), calibration=CALIBRATION, min_probability=0.9
    )
    nodes = [NodeWithScore(node=TextNode(text=t, id_=t), score=0.5) for t in TEXTS]
    out = await rerank.apostprocess_nodes(nodes, query_str="q")
    assert [n.node.node_id for n in out] == ["alpha"]
