"""Per-call options of the reranking retriever, and batches that run each stage once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from doubles import AxisEmbeddings, TableCrossEncoder, WordOverlapCrossEncoder
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    RerankingRetriever,
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
SCORES = {
    "red apple fruit": 3.0,
    "green apple": 2.0,
    "red": 1.0,
    "blue sky": 0.5,
    "green grass": 0.1,
}


def _build(model: Any = None, **kwargs: Any) -> RerankingRetriever:
    return build_reranking_retriever(
        DOCS,
        embedding=AxisEmbeddings(WORDS),
        reranker=model or TableCrossEncoder(SCORES),
        k=5,
        **kwargs,
    )


class _Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended = 0
        self.errors = 0

    def on_retriever_start(
        self, serialized: dict[str, Any], query: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.started.append(kwargs.get("name") or "")

    def on_retriever_end(self, documents: Any, **kwargs: Any) -> None:
        self.ended += 1

    def on_retriever_error(self, error: BaseException, **kwargs: Any) -> None:
        self.errors += 1


def test_top_n_and_score_threshold_per_call() -> None:
    retriever = _build(top_n=5)
    assert [d.id for d in retriever.invoke("apple", top_n=2)] == [
        "apple",
        "green-apple",
    ]
    kept = retriever.invoke("apple", score_threshold=0.9)
    assert [d.id for d in kept] == ["apple", "green-apple", "red"]
    # The symptom seen by a user: 0.9 returned exactly what 0.0 returns.
    assert kept != retriever.invoke("apple", score_threshold=0.0)
    assert len(retriever.invoke("apple")) == 5  # the settings are unchanged


def test_the_two_thresholds_are_named_apart() -> None:
    model = TableCrossEncoder(SCORES)
    retriever = _build(model, top_n=None, cache_size=0)
    retriever.invoke("red apple", retrieval_score_threshold=0.8)
    first_stage = model.calls[-1]
    assert 0 < len(first_stage) < 5  # the first stage cut before reranking
    retriever.invoke("red apple", score_threshold=0.8)
    assert len(model.calls[-1]) == 5  # the reranker's threshold cuts after


def test_unknown_argument_lists_the_accepted_ones() -> None:
    with pytest.raises(TypeError) as info:
        _build().invoke("apple", topn=2)
    message = str(info.value)
    assert "topn" in message
    for name in ("top_n", "score_threshold", "k", "retrieval_score_threshold"):
        assert name in message


def test_bad_per_call_values_are_errors() -> None:
    with pytest.raises(ValueError, match="top_n must be a positive integer"):
        _build().invoke("apple", top_n=0)
    with pytest.raises(ValueError, match="score_threshold must be a number"):
        _build().invoke("apple", score_threshold="high")


def test_configurable_options_and_precedence() -> None:
    retriever = _build(top_n=5)
    configured = retriever.with_config(configurable={"top_n": 1, "thread_id": "x"})
    assert [d.id for d in configured.invoke("apple")] == ["apple"]
    assert len(configured.invoke("apple", top_n=3)) == 3  # the call wins
    assert [len(r) for r in configured.batch(["apple", "sky"])] == [1, 1]


async def test_async_paths_take_the_same_options() -> None:
    retriever = _build(top_n=5)
    assert len(await retriever.ainvoke("apple", top_n=2)) == 2
    results = await retriever.abatch(["apple", "sky"], top_n=1)
    assert [[d.id for d in r] for r in results] == [["apple"], ["apple"]]
    configured = retriever.with_config(configurable={"score_threshold": 2.5})
    assert [d.id for d in await configured.ainvoke("apple")] == ["apple"]


def test_batch_runs_each_stage_once_per_query_and_keeps_runs() -> None:
    model = WordOverlapCrossEncoder()
    retriever = _build(model, top_n=2)
    handler = _Runs()
    queries = ["red apple", "blue sky", "green grass"]
    results = retriever.batch(queries, {"callbacks": [handler]}, top_n=1)
    assert model.calls == 1  # one model stream for all queries
    assert handler.started.count("RerankingRetriever") == 3
    assert handler.started.count("FaissRetriever") == 3  # not twice per query
    assert handler.ended == 6
    one_by_one = [retriever.invoke(q, top_n=1) for q in queries]
    for batched, single in zip(results, one_by_one, strict=True):
        assert [d.id for d in batched] == [d.id for d in single]
        for a, b in zip(batched, single, strict=True):
            assert a.metadata["relevance_score"] == b.metadata["relevance_score"]
            assert a.metadata["retrieval_score"] == pytest.approx(
                b.metadata["retrieval_score"], abs=1e-5
            )


def test_batch_with_different_configs_per_query() -> None:
    retriever = _build(top_n=5)
    results = retriever.batch(
        ["apple", "apple"],
        [{"configurable": {"top_n": 1}}, {"configurable": {"k": 2}}],
    )
    assert [len(r) for r in results] == [1, 2]


def test_batch_reports_a_failing_query_and_keeps_the_others() -> None:
    retriever = _build(WordOverlapCrossEncoder(), top_n=1)
    handler = _Runs()
    results = retriever.batch(
        ["red apple fruit", " ", "blue sky"],
        {"callbacks": [handler]},
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    assert [results[0][0].id, results[2][0].id] == ["apple", "sky"]  # type: ignore[index]
    assert handler.errors >= 1
    with pytest.raises(ValueError, match="query is empty"):
        retriever.batch(["apple", " "])


def test_compressor_takes_the_same_overrides() -> None:
    compressor = CrossEncoderCompressor(model=TableCrossEncoder(SCORES), top_n=5)
    out = compressor.compress_documents(DOCS, "q", top_n=2)
    assert [d.id for d in out] == ["apple", "green-apple"]
    out = asyncio.run(compressor.acompress_documents(DOCS, "q", score_threshold=1.5))
    assert [d.id for d in out] == ["apple", "green-apple"]
    assert compressor.top_n == 5
    assert compressor.score_threshold is None


def test_plain_strings_instead_of_documents_are_explained() -> None:
    compressor = CrossEncoderCompressor(model=TableCrossEncoder(SCORES))
    with pytest.raises(TypeError, match=r"item 0 is a str .*Document\(page_content"):
        compressor.compress_documents(["red"], "q")  # type: ignore[list-item]


def test_lone_surrogates_are_rejected_naming_the_document() -> None:
    compressor = CrossEncoderCompressor(model=TableCrossEncoder(SCORES))
    docs = [
        Document(page_content="fine", id="a"),
        Document(page_content="x\ud800", id="b"),
    ]
    with pytest.raises(ValueError, match=r"document 1 \(id='b'\).*lone surrogate"):
        compressor.compress_documents(docs, "q")
    with pytest.raises(ValueError, match="the query contains a lone surrogate"):
        compressor.compress_documents(docs[:1], "q\udfff")


def test_build_with_plain_strings_says_what_was_expected() -> None:
    with pytest.raises(TypeError, match="item 1 is a str"):
        build_reranking_retriever(
            [DOCS[0], "blue sky"],  # type: ignore[list-item]
            embedding=AxisEmbeddings(WORDS),
            reranker=TableCrossEncoder(),
        )


def test_reprs_show_what_was_chosen_not_every_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reranker must be found (it is never loaded here): a folder whose
    # name needs escaping in HTML.
    monkeypatch.chdir(tmp_path)
    Path("<org>", "reranker").mkdir(parents=True)
    retriever = build_reranking_retriever(
        DOCS,
        embedding=AxisEmbeddings(WORDS),
        reranker="<org>/reranker",
        activation="sigmoid",
    )
    compressor = repr(retriever.base_compressor)
    assert compressor == (
        "CrossEncoderCompressor(model='<org>/reranker', activation='sigmoid')"
    )
    assert "cache_size" not in repr(retriever)
    html = retriever._repr_html_()
    assert "&lt;org&gt;/reranker" in html
    assert "<org>" not in html
    assert "FaissVectorStore(size=5" in html


class _RunMetadata(BaseCallbackHandler):
    def __init__(self) -> None:
        self.runs: list[tuple[str, list[str], dict[str, Any]]] = []

    def on_retriever_start(
        self, serialized: dict[str, Any], query: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.runs.append(
            (kwargs.get("name") or "", kwargs.get("tags") or [], kwargs["metadata"])
        )


def test_batch_runs_carry_the_metadata_invoke_gives_them() -> None:
    retriever = _build(top_n=1).with_config(tags=["mine"], metadata={"user": "u1"})
    one, many = _RunMetadata(), _RunMetadata()
    retriever.invoke("apple", {"callbacks": [one]})
    retriever.batch(["apple", "sky"], {"callbacks": [many]})
    expected = [run for run in one.runs if run[0] == "RerankingRetriever"]
    assert expected[0][2]["ls_retriever_name"] == "reranking"
    assert expected[0][2]["user"] == "u1"
    assert "mine" in expected[0][1]
    batched = [run for run in many.runs if run[0] == "RerankingRetriever"]
    assert batched == expected * 2
