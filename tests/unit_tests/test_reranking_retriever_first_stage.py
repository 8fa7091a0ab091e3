"""Any LangChain retriever as the first stage: a team keeps its store, adds the reranker."""

from __future__ import annotations

import logging
import re
from typing import Any
from uuid import UUID

import pytest
from doubles import AxisEmbeddings, TableCrossEncoder
from langchain_classic.retrievers import EnsembleRetriever
from langchain_core.callbacks import (
    BaseCallbackHandler,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_ce_rerank import RerankingRetriever, build_reranking_retriever

WORDS = ["red", "green", "blue", "apple", "sky", "grass", "fruit"]
DOCS = [
    Document(page_content="red apple fruit", id="apple"),
    Document(page_content="blue sky", id="sky"),
    Document(page_content="green grass", id="grass"),
    Document(page_content="green apple", id="green-apple"),
    Document(page_content="red", id="red"),
]
SCORES = {
    "red apple fruit": 3.0,
    "green apple": 2.0,
    "red": 1.0,
    "blue sky": 0.5,
    "green grass": 0.1,
}


class KeywordRetriever(BaseRetriever):
    """Documents sharing a word with the query, in corpus order; no scores.

    Takes no per-call options: LangChain's `invoke` would drop them silently.
    """

    docs: list[Document]
    k: int = 10

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = set(query.split())
        return [d for d in self.docs if words & set(d.page_content.split())][: self.k]


class _Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended = 0

    def on_retriever_start(
        self, serialized: dict[str, Any], query: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.started.append(kwargs.get("name") or "")

    def on_retriever_end(self, documents: Any, **kwargs: Any) -> None:
        self.ended += 1


def _keyword(
    model: TableCrossEncoder | None = None, **kwargs: Any
) -> RerankingRetriever:
    return build_reranking_retriever(
        first_stage=KeywordRetriever(docs=DOCS),
        reranker=model or TableCrossEncoder(SCORES),
        cache_size=0,  # every call reaches the model, so tests can count them
        **kwargs,
    )


def test_a_foreign_first_stage_feeds_the_reranker_and_gets_ranks() -> None:
    model = TableCrossEncoder(SCORES)
    retriever = _keyword(model, top_n=2)
    assert isinstance(retriever.base_retriever, KeywordRetriever)
    docs = retriever.invoke("red apple")
    # The keyword matches, in corpus order: apple, green-apple, red.
    assert sorted(t for _, t in model.calls[-1]) == [
        "green apple",
        "red",
        "red apple fruit",
    ]
    assert [d.id for d in docs] == ["apple", "green-apple"]
    assert [d.metadata["retrieval_rank"] for d in docs] == [1, 2]
    assert [d.metadata["relevance_score"] for d in docs] == [3.0, 2.0]
    # No score is made up for a first stage that gives none.
    assert all("retrieval_score" not in d.metadata for d in docs)
    # The first stage's own documents are copied, never changed.
    assert all(d.metadata == {} for d in DOCS)


def test_what_the_first_stage_gives_is_never_overwritten() -> None:
    given = [
        Document(page_content="red", metadata={"retrieval_score": 0.7}),
        Document(page_content="red apple fruit", metadata={"retrieval_rank": 9}),
    ]
    retriever = build_reranking_retriever(
        first_stage=KeywordRetriever(docs=given),
        reranker=TableCrossEncoder(SCORES),
        top_n=None,
    )
    docs = retriever.invoke("red")
    assert [d.metadata for d in docs] == [
        {"retrieval_rank": 9, "relevance_score": 3.0},
        {"retrieval_score": 0.7, "retrieval_rank": 1, "relevance_score": 1.0},
    ]
    assert given[0].metadata == {"retrieval_score": 0.7}


def test_rrf_reads_the_ranks_filled_in(caplog: pytest.LogCaptureFixture) -> None:
    retriever = _keyword(top_n=None, fusion="rrf")
    with caplog.at_level(logging.WARNING):
        docs = retriever.invoke("red apple")
    assert caplog.records == []  # no "lack an integer retrieval_rank"
    assert all("fused_score" in d.metadata for d in docs)


def test_options_a_foreign_first_stage_would_drop_are_errors() -> None:
    retriever = _keyword(top_n=5)
    for options in ({"k": 2}, {"filter": {"x": 1}}, {"retrieval_score_threshold": 0.5}):
        with pytest.raises(TypeError, match="KeywordRetriever") as info:
            retriever.invoke("red apple", **options)
        assert next(iter(options)) in str(info.value)
        assert (
            "top_n, score_threshold, diversity, deadline_ms, min_probability and instruction"
            in str(info.value)
        )
    configured = retriever.with_config(configurable={"k": 2})
    with pytest.raises(TypeError, match=r"\['k'\]"):
        configured.invoke("red apple")
    with pytest.raises(TypeError, match=r"\['k'\]"):
        retriever.batch(["red", "sky"], k=2)
    # The reranker's options keep working.
    assert [d.id for d in retriever.invoke("red apple", top_n=1)] == ["apple"]
    kept = retriever.invoke("red apple", score_threshold=1.5)
    assert [d.id for d in kept] == ["apple", "green-apple"]


def test_options_pass_through_to_a_retriever_that_takes_them() -> None:
    model = TableCrossEncoder(SCORES)
    store = InMemoryVectorStore.from_documents(DOCS, AxisEmbeddings(WORDS))
    retriever = build_reranking_retriever(
        first_stage=store.as_retriever(search_kwargs={"k": 2}),
        reranker=model,
        top_n=None,
        cache_size=0,
    )
    retriever.invoke("red apple")
    assert len(model.calls[-1]) == 2
    docs = retriever.invoke("red apple", k=4)
    assert len(model.calls[-1]) == 4  # k per call reached the store
    assert sorted(d.metadata["retrieval_rank"] for d in docs) == [1, 2, 3, 4]
    # An existing LangChain vector store works as vectorstore=..., with k.
    via_store = build_reranking_retriever(
        vectorstore=store, reranker=model, k=3, cache_size=0
    )
    via_store.invoke("red apple")
    assert len(model.calls[-1]) == 3


def test_batch_async_and_callbacks_with_a_foreign_first_stage() -> None:
    model = TableCrossEncoder(SCORES)
    retriever = _keyword(model, top_n=2)
    queries = ["red apple", "green", "blue sky"]
    expected = [[d.id for d in retriever.invoke(q)] for q in queries]
    calls = len(model.calls)
    handler = _Runs()
    batched = retriever.batch(queries, {"callbacks": [handler]})
    assert [[d.id for d in r] for r in batched] == expected
    assert len(model.calls) == calls + 1  # one model stream for all queries
    assert handler.started.count("RerankingRetriever") == 3
    assert handler.started.count("KeywordRetriever") == 3
    assert handler.ended == 6
    assert all(d.metadata["retrieval_rank"] >= 1 for r in batched for d in r)


async def test_ainvoke_and_abatch_with_a_foreign_first_stage() -> None:
    retriever = _keyword(top_n=2)
    handler = _Runs()
    docs = await retriever.ainvoke("red apple", {"callbacks": [handler]})
    assert [d.id for d in docs] == ["apple", "green-apple"]
    assert handler.started == ["RerankingRetriever", "KeywordRetriever"]
    results = await retriever.abatch(["red apple", "blue sky"], top_n=1)
    assert [[d.id for d in r] for r in results] == [["apple"], ["sky"]]
    assert results[1][0].metadata["retrieval_rank"] == 1


def test_langchains_ensemble_retriever_as_the_first_stage() -> None:
    store = InMemoryVectorStore.from_documents(DOCS, AxisEmbeddings(WORDS))
    ensemble = EnsembleRetriever(
        retrievers=[
            KeywordRetriever(docs=DOCS),
            store.as_retriever(search_kwargs={"k": 2}),
        ],
        weights=[0.5, 0.5],
    )
    retriever = build_reranking_retriever(
        first_stage=ensemble, reranker=TableCrossEncoder(SCORES), top_n=None
    )
    docs = retriever.invoke("green apple")
    assert docs[0].id == "apple"
    assert sorted(d.metadata["retrieval_rank"] for d in docs) == list(
        range(1, len(docs) + 1)
    )
    assert len(retriever.batch(["green apple", "sky"])) == 2
    with pytest.raises(TypeError, match="EnsembleRetriever"):
        retriever.invoke("green apple", k=3)


def test_a_first_stage_with_other_arguments_is_an_error() -> None:
    keyword = KeywordRetriever(docs=DOCS)
    model = TableCrossEncoder()
    with pytest.raises(
        ValueError, match=re.escape("first_stage=... or documents=...")
    ) as info:
        build_reranking_retriever(DOCS, first_stage=keyword, reranker=model)
    assert "not both" in str(info.value)
    store = InMemoryVectorStore(AxisEmbeddings(WORDS))
    with pytest.raises(
        ValueError, match=re.escape("first_stage=... or vectorstore=...")
    ):
        build_reranking_retriever(vectorstore=store, first_stage=keyword)
    with pytest.raises(ValueError, match=re.escape("first_stage=... or embedding=...")):
        build_reranking_retriever(first_stage=keyword, embedding=AxisEmbeddings(WORDS))
    with pytest.raises(ValueError, match=r"k sets .* set the count on your retriever"):
        build_reranking_retriever(first_stage=keyword, reranker=model, k=5)
    with pytest.raises(
        TypeError, match=re.escape("pass vectorstore=... for a vector store")
    ):
        build_reranking_retriever(first_stage=store, reranker=model)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a LangChain BaseRetriever, got a str"):
        build_reranking_retriever(first_stage="bm25", reranker=model)  # type: ignore[arg-type]


class _StringRetriever(BaseRetriever):
    """A broken first stage: returns plain strings, not Documents."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return ["red", "blue sky"]  # type: ignore[list-item]


def test_a_first_stage_returning_strings_is_explained() -> None:
    retriever = build_reranking_retriever(
        first_stage=_StringRetriever(), reranker=TableCrossEncoder(SCORES)
    )
    with pytest.raises(TypeError, match=r"item 0 is a str .*Document\(page_content"):
        retriever.invoke("red")
