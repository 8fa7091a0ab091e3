from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from doubles import AxisEmbeddings, TableCrossEncoder, WordOverlapCrossEncoder
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_ce_rerank import CrossEncoderCompressor, build_reranking_retriever


def _docs(*texts: str) -> list[Document]:
    return [Document(page_content=t, id=t) for t in texts]


def test_repeated_query_skips_the_model() -> None:
    model = TableCrossEncoder({"a": 1.0, "bb": 2.0})
    compressor = CrossEncoderCompressor(model=model)
    first = compressor.compress_documents(_docs("a", "bb"), "q")
    second = compressor.compress_documents(_docs("a", "bb"), "q")
    assert first == second
    assert len(model.calls) == 1
    info = compressor.cache_info()
    assert (info.hits, info.misses, info.currsize) == (2, 2, 2)


def test_only_new_candidates_go_to_the_model() -> None:
    model = TableCrossEncoder()
    compressor = CrossEncoderCompressor(model=model)
    compressor.compress_documents(_docs("a", "b"), "q")
    compressor.compress_documents(_docs("b", "c"), "q")
    compressor.compress_documents(_docs("b"), "another query")
    assert model.calls == [
        [("q", "a"), ("q", "b")],
        [("q", "c")],
        [("another query", "b")],
    ]


def test_cache_can_be_turned_off_and_cleared() -> None:
    model = TableCrossEncoder()
    off = CrossEncoderCompressor(model=model, cache_size=0)
    off.compress_documents(_docs("a"), "q")
    off.compress_documents(_docs("a"), "q")
    assert len(model.calls) == 2
    on = CrossEncoderCompressor(model=model)
    on.compress_documents(_docs("a"), "q")
    on.clear_cache()
    assert on.cache_info().currsize == 0
    on.compress_documents(_docs("a"), "q")
    assert len(model.calls) == 4
    with pytest.raises(ValidationError, match="cache_size"):
        CrossEncoderCompressor(cache_size=-1)


def test_least_recently_used_entries_are_evicted() -> None:
    model = TableCrossEncoder()
    compressor = CrossEncoderCompressor(model=model, cache_size=2)
    for text in ("a", "b", "a", "c", "a", "b"):
        compressor.compress_documents(_docs(text), "q")
    # a and b cached; a refreshed; c evicts b; a hit; b missing again.
    assert [call[0][1] for call in model.calls] == ["a", "b", "c", "b"]
    assert compressor.cache_info().currsize == 2


def test_activation_is_applied_after_the_cache() -> None:
    model = TableCrossEncoder({"a": 0.0})
    logits = CrossEncoderCompressor(model=model)
    logits.compress_documents(_docs("a"), "q")
    probabilities = logits.model_copy(update={"activation": "sigmoid"})
    out = probabilities.compress_documents(_docs("a"), "q")
    assert out[0].metadata["relevance_score"] == pytest.approx(0.5)
    assert len(model.calls) == 1  # same raw score, reused


def test_batch_equals_one_by_one_with_a_single_model_call() -> None:
    items = [
        (_docs("red apple", "blue sky", "red"), "red"),
        (_docs("blue sky", "green"), "blue sky"),
        (_docs("red apple", "blue sky", "red"), "red"),  # repeated query
    ]
    single = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(), cache_size=0, top_n=2
    )
    expected = [single.compress_documents(docs, q) for docs, q in items]
    model = WordOverlapCrossEncoder()
    batch = CrossEncoderCompressor(model=model, top_n=2)
    assert batch.compress_documents_batch(items) == expected
    assert model.calls == 1


def test_pairs_reach_the_model_shortest_first_and_once() -> None:
    model = TableCrossEncoder()
    compressor = CrossEncoderCompressor(model=model, cache_size=0)
    compressor.compress_documents_batch(
        [(_docs("ccc", "a", "bb"), "q"), (_docs("bb", "dddd"), "q")]
    )
    [call] = model.calls
    assert [t for _, t in call] == ["a", "bb", "ccc", "dddd"]


def test_batch_validates_every_query() -> None:
    compressor = CrossEncoderCompressor(model=TableCrossEncoder())
    with pytest.raises(ValueError, match="query is empty"):
        compressor.compress_documents_batch([(_docs("a"), "q"), (_docs("b"), " ")])


class _RetrieverRuns(BaseCallbackHandler):
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_retriever_start(
        self, serialized: dict[str, Any], query: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.names.append(kwargs.get("name") or "")


def test_retriever_batch_scores_all_queries_in_one_stream_and_keeps_callbacks() -> None:
    docs = [
        Document(page_content=t, id=t) for t in ["red apple", "blue sky", "green grass"]
    ]
    model = WordOverlapCrossEncoder()
    retriever = build_reranking_retriever(
        docs,
        embedding=AxisEmbeddings(["red", "blue", "green", "apple", "sky", "grass"]),
        reranker=model,
        k=3,
        top_n=1,
    )
    handler = _RetrieverRuns()
    queries = ["red apple", "blue sky", "green grass"]
    results = retriever.batch(queries, {"callbacks": [handler]})
    assert [r[0].id for r in results] == queries
    assert model.calls == 1
    assert handler.names.count("RerankingRetriever") == 3
    assert retriever.batch(["red apple"]) == [results[0][:1]]
