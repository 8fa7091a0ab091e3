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
