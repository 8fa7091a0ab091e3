"""Every Python door takes `instruction=` as a setting and per call."""

from __future__ import annotations

import asyncio

import pytest
from doubles import InstructedCrossEncoder, WordOverlapCrossEncoder
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    InstructionNotSupportedError,
    build_reranking_retriever,
)
from langchain_ce_rerank.engine import (
    CalibrationMismatchError,
    ScoreCalibration,
    ScoringIdentity,
)
from langchain_ce_rerank.engine.probability import PlattMapping

DOCS = [Document(page_content=t) for t in ["statutes of tax", "cases of tax"]]


def instructions(scorer: InstructedCrossEncoder) -> list[str | None]:
    return [instruction for instruction, _ in scorer.calls]


def test_compressor_setting_and_per_call_override() -> None:
    scorer = InstructedCrossEncoder()
    compressor = CrossEncoderCompressor(model=scorer, instruction="find statutes")
    assert compressor.instruction == "find statutes"
    best = compressor.compress_documents(DOCS, "tax", top_n=1)
    assert best[0].page_content == "statutes of tax"
    best = compressor.compress_documents(DOCS, "tax", top_n=1, instruction="find cases")
    assert best[0].page_content == "cases of tax"
    compressor.compress_documents_explained(DOCS, "tax", instruction="one")
    compressor.compress_documents_batch([(DOCS, "tax")], instruction="two")
    asyncio.run(compressor.acompress_documents(DOCS, "tax", instruction="three"))
    assert instructions(scorer) == [
        "find statutes",
        "find cases",
        "one",
        "two",
        "three",
    ]


def test_compressor_refuses_it_for_a_model_that_reads_none() -> None:
    compressor = CrossEncoderCompressor(model=WordOverlapCrossEncoder())
    with pytest.raises(InstructionNotSupportedError, match="instruction="):
        compressor.compress_documents(DOCS, "tax", instruction="find statutes")
    assert compressor.compress_documents(DOCS, "tax")


def test_reranking_retriever_per_call_and_batch_streams() -> None:
    scorer = InstructedCrossEncoder()
    retriever = build_reranking_retriever(
        DOCS,
        embedding=DeterministicFakeEmbedding(size=8),
        reranker=scorer,
        k=2,
        top_n=1,
        cache_size=0,
    )
    found = retriever.invoke("tax", instruction="find cases")
    assert found[0].page_content == "cases of tax"
    assert instructions(scorer) == ["find cases"]
    scorer.calls.clear()
    results = retriever.batch(
        ["tax", "tax", "tax"],
        config=[
            {"configurable": {"instruction": "find statutes"}},
            {"configurable": {"instruction": "find cases"}},
            {"configurable": {"instruction": "find statutes"}},
        ],
    )
    assert [docs[0].page_content for docs in results] == [
        "statutes of tax",
        "cases of tax",
        "statutes of tax",
    ]
    # One model stream per distinct instruction, not one per query.
    assert sorted(instructions(scorer), key=str) == ["find cases", "find statutes"]


def test_llama_index_postprocessor_setting_and_override() -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_ce_rerank.llama_index import CrossEncoderRerank

    scorer = InstructedCrossEncoder()
    rerank = CrossEncoderRerank(model=scorer, instruction="find statutes", top_n=1)
    nodes = [NodeWithScore(node=TextNode(text=d.page_content)) for d in DOCS]
    best = rerank.postprocess_nodes(nodes, query_str="tax")
    assert best[0].node.get_content() == "statutes of tax"
    best = rerank.postprocess_nodes(nodes, query_str="tax", instruction="find cases")
    assert best[0].node.get_content() == "cases of tax"
    asyncio.run(rerank.apostprocess_nodes(nodes, query_str="tax", instruction="x"))
    assert instructions(scorer) == ["find statutes", "find cases", "x"]


def _calibrated(instruction: str | None) -> ScoreCalibration:
    return ScoreCalibration(
        mapping=PlattMapping(slope=1.0, intercept=0.0),
        fitted_for=ScoringIdentity(
            model="doubles.InstructedCrossEncoder", instruction=instruction
        ),
    )


def test_a_calibration_is_refused_for_a_call_under_another_instruction() -> None:
    fitted = _calibrated("find statutes")
    compressor = CrossEncoderCompressor(
        model=InstructedCrossEncoder(), instruction="find statutes", calibration=fitted
    )
    compressor.compress_documents(DOCS, "tax")  # the instruction it was fitted under
    compressor.compress_documents(DOCS, "tax", instruction="find statutes")
    with pytest.raises(CalibrationMismatchError, match="instruction: fitted with"):
        compressor.compress_documents(DOCS, "tax", instruction="find cases")
    with pytest.raises(CalibrationMismatchError):
        compressor.engine.with_settings(calibration=fitted).rank(
            "tax", ["a"], instruction=None
        )
    # And at construction, as for any other scoring setting.
    with pytest.raises(ValueError, match="instruction: fitted with"):
        CrossEncoderCompressor(model=InstructedCrossEncoder(), calibration=fitted)
