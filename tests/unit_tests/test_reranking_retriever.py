from __future__ import annotations

import pytest
from doubles import AxisEmbeddings, TableCrossEncoder, WordOverlapCrossEncoder
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    FaissVectorStore,
    build_reranking_retriever,
)

WORDS = ["red", "green", "blue", "apple", "sky", "grass", "fruit"]
DOCS = [
    Document(page_content="red apple fruit", id="apple"),
    Document(page_content="blue sky", id="sky"),
    Document(page_content="green grass", id="grass"),
    Document(page_content="green apple", id="green-apple"),
    Document(page_content="red", id="red"),
]


def _build(**kwargs: object) -> ContextualCompressionRetriever:
    return build_reranking_retriever(DOCS, embedding=AxisEmbeddings(WORDS), **kwargs)  # type: ignore[arg-type]


def test_returns_top_n_with_both_stages_scores() -> None:
    retriever = _build(reranker=WordOverlapCrossEncoder(), k=5, top_n=2)
    docs = retriever.invoke("apple fruit")
    assert [d.id for d in docs] == ["apple", "green-apple"]
    for doc in docs:
        assert {"retrieval_score", "retrieval_rank", "relevance_score"} <= set(
            doc.metadata
        )
    assert docs[0].metadata["relevance_score"] == 2.0


def test_k_is_the_number_of_candidates_reranked() -> None:
    model = TableCrossEncoder()
    _build(reranker=model, k=3, top_n=1).invoke("red")
    assert len(model.calls[0]) == 3
    _build(reranker=model, k=3, top_n=1).invoke("red", k=5)
    assert len(model.calls[1]) == 5


def test_compressor_kwargs_are_passed_on() -> None:
    retriever = _build(
        reranker=TableCrossEncoder({"blue sky": 1.0}), score_threshold=0.5
    )
    assert [d.id for d in retriever.invoke("sky")] == ["sky"]


def test_ready_compressor_is_used_as_is() -> None:
    compressor = CrossEncoderCompressor(model=TableCrossEncoder(), top_n=1)
    retriever = _build(reranker=compressor)
    assert retriever.base_compressor is compressor
    with pytest.raises(ValueError, match="score_threshold"):
        _build(reranker=compressor, score_threshold=0.1)


def test_existing_vectorstore() -> None:
    store = FaissVectorStore.from_documents(DOCS, AxisEmbeddings(WORDS))
    retriever = build_reranking_retriever(
        vectorstore=store, reranker=TableCrossEncoder()
    )
    assert len(retriever.invoke("red")) == 5
    with pytest.raises(ValueError, match="not both"):
        build_reranking_retriever(DOCS, vectorstore=store, reranker=TableCrossEncoder())


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        _build(reranker=TableCrossEncoder(), k=0)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        _build(reranker=TableCrossEncoder(), top_n=0)


def test_blank_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="query is empty"):
        _build(reranker=TableCrossEncoder()).invoke(" ")


async def test_ainvoke_and_batch() -> None:
    retriever = _build(reranker=WordOverlapCrossEncoder(), k=5, top_n=1)
    assert [d.id for d in await retriever.ainvoke("green grass")] == ["grass"]
    results = retriever.batch(["blue sky", "red apple fruit"])
    assert [r[0].id for r in results] == ["sky", "apple"]
