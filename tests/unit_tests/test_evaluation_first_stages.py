"""`evaluate` over several first stages: dense, BM25 and hybrid, each reranked.

Latency is checked on a fake clock that only the doubles move (a model pair
costs 1 ms, embedding a query 10 ms), so every number is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from doubles import AxisEmbeddings, FakeClock, TableCrossEncoder
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    FaissVectorStore,
    build_reranking_retriever,
)
from langchain_ce_rerank.engine import ScoredText
from langchain_ce_rerank.evaluation import (
    FIRST_STAGES,
    default_first_stages,
    evaluate,
)
from langchain_ce_rerank.evaluation.first_stages import keyword_search_available

WORDS = ["red", "green", "blue", "sky", "grass", "apple"]
DOCS = [
    Document(page_content="red apple", id="c1", metadata={"doc_id": "apple"}),
    Document(page_content="red", id="red"),
    Document(page_content="green grass", id="grass"),
    Document(page_content="blue sky", id="sky"),
]
QUERIES = {"a": "red", "b": "sky"}
QRELS = {"a": {"apple": 1}, "b": {"sky": 1}}


class ClockedEmbeddings(AxisEmbeddings):
    """Embedding a query costs `per_query` seconds on `clock`, plus `startup`
    on the first call after it is set."""

    def __init__(self, clock: FakeClock, per_query: float = 0.010) -> None:
        super().__init__(WORDS)
        self.clock = clock
        self.per_query = per_query
        self.startup = 0.0

    def embed_query(self, text: str) -> list[float]:
        self.clock.advance(self.per_query + self.startup)
        self.startup = 0.0
        return super().embed_query(text)


class ClockedCrossEncoder(TableCrossEncoder):
    """Each pair costs `per_pair` seconds on `clock`; the first call `startup` more."""

    def __init__(
        self, clock: FakeClock, per_pair: float = 0.001, startup: float = 0.0
    ) -> None:
        super().__init__({"red apple": 5.0, "blue sky": 4.0})
        self.clock = clock
        self.per_pair = per_pair
        self.startup = startup

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        self.clock.advance(self.per_pair * len(text_pairs) + self.startup)
        self.startup = 0.0
        return super().score(text_pairs)


class WordRetriever(BaseRetriever):
    """Not the store's: documents sharing a word with the query."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = set(query.split())
        return [d for d in self.docs if words & set(d.page_content.split())]


def _clocked(startup: float = 0.0):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    embeddings = ClockedEmbeddings(clock)
    store = FaissVectorStore.from_documents(DOCS, embeddings)
    model = ClockedCrossEncoder(clock, startup=startup)
    embeddings.startup = startup  # the next query embedding: the evaluation's first
    pipeline = build_reranking_retriever(vectorstore=store, reranker=model, k=4)
    return clock, model, pipeline


def test_each_first_stage_alone_reranked_and_fused_in_one_report() -> None:
    clock, _, pipeline = _clocked()
    report = evaluate(pipeline, QUERIES, QRELS, clock=clock)
    assert [(c.name, c.first_stage) for c in report.configurations] == [
        ("dense", "dense"),
        ("dense + rerank", "dense"),
        ("dense + rerank, RRF", "dense"),
        ("bm25", "bm25"),
        ("bm25 + rerank", "bm25"),
        ("bm25 + rerank, RRF", "bm25"),
        ("hybrid", "hybrid"),
        ("hybrid + rerank", "hybrid"),
        ("hybrid + rerank, RRF", "hybrid"),
    ]
    runs = {c.name: c.run for c in report.configurations}
    # Each first stage searched its own way: BM25 only finds documents that
    # hold a query word; dense and hybrid return all k=4.
    assert set(runs["bm25"]["a"]) == {"apple", "red"}
    assert set(runs["bm25"]["b"]) == {"sky"}
    assert len(runs["dense"]["a"]) == len(runs["hybrid"]["a"]) == 4
    # Each reranked configuration orders its own first stage's candidates.
    for stage in FIRST_STAGES:
        for qid in QUERIES:
            assert set(runs[f"{stage} + rerank"][qid]) == set(runs[stage][qid])
            assert set(runs[f"{stage} + rerank, RRF"][qid]) == set(runs[stage][qid])
    # The model scores "red apple" 5 and "blue sky" 4 (whatever the query):
    # BM25 put "red" above "red apple" for "red"; reranked, doc "apple" is first.
    by_name = {c.name: c for c in report.configurations}
    assert by_name["bm25"].metrics["MRR@10"] == pytest.approx(0.75)
    assert by_name["bm25 + rerank"].metrics["MRR@10"] == pytest.approx(1.0)
    assert next(iter(runs["dense + rerank"]["a"])) == "apple"


def test_first_stages_picks_which_and_in_what_order() -> None:
    _, model, pipeline = _clocked()
    report = evaluate(pipeline, QUERIES, QRELS, first_stages=["hybrid", "bm25"])
    assert [c.name for c in report.configurations][::3] == ["hybrid", "bm25"]
    assert len(report.configurations) == 6
    # One warm-up pair, then one call per first stage asked for: no dense one.
    assert [len(call) for call in model.calls] == [1, 8, 3]


def test_latency_per_stage_is_each_first_stages_own() -> None:
    clock, _, pipeline = _clocked()
    report = evaluate(pipeline, QUERIES, QRELS, clock=clock)
    latency = {c.name: c.latency_ms for c in report.configurations}
    # Dense and hybrid embed the query (10 ms); BM25 does not.
    # Reranking: 8 pairs (dense, hybrid) or 3 (bm25) at 1 ms, over 2 queries.
    expected = {
        "dense": (10.0, 0.0),
        "dense + rerank": (10.0, 4.0),
        "dense + rerank, RRF": (10.0, 4.0),
        "bm25": (0.0, 0.0),
        "bm25 + rerank": (0.0, 1.5),
        "bm25 + rerank, RRF": (0.0, 1.5),
        "hybrid": (10.0, 0.0),
        "hybrid + rerank": (10.0, 4.0),
        "hybrid + rerank, RRF": (10.0, 4.0),
    }
    for name, (first_ms, rerank_ms) in expected.items():
        assert latency[name] == pytest.approx(
            {
                "first_stage": first_ms,
                "rerank": rerank_ms,
                "total": first_ms + rerank_ms,
            }
        ), name
    data = report.to_dict()  # what `ce-rerank eval --json` writes
    assert {c["name"]: c["latency_ms"] for c in data["configurations"]} == latency


def test_one_off_startup_is_not_the_first_stages_latency() -> None:
    # The first query embedding and the first model call each cost a second
    # more (loading, first forward pass); no configuration may carry it.
    clock, model, pipeline = _clocked(startup=1.0)
    report = evaluate(pipeline, QUERIES, QRELS, clock=clock)
    latency = {c.name: c.latency_ms for c in report.configurations}
    assert latency["dense + rerank"] == pytest.approx(
        {"first_stage": 10.0, "rerank": 4.0, "total": 14.0}
    )
    assert latency["hybrid + rerank"] == latency["dense + rerank"]
    assert len(model.calls[0]) == 1  # the untimed warm-up pair


def test_overlapping_candidates_are_scored_again_not_read_from_the_cache() -> None:
    # Dense and hybrid find the same 4 documents for both queries: with the
    # score cache, hybrid would be scored in 0 ms and look free.
    clock, model, pipeline = _clocked()
    compressor = pipeline.base_compressor
    assert isinstance(compressor, CrossEncoderCompressor)
    before = compressor.cache_info()
    report = evaluate(
        pipeline, QUERIES, QRELS, first_stages=["dense", "hybrid"], clock=clock
    )
    _warm_up, dense, hybrid = model.calls
    assert sorted(hybrid) == sorted(dense)  # every pair scored by the model again
    assert compressor.cache_info() == before  # neither read nor written
    rerank = {c.name: c.latency_ms["rerank"] for c in report.configurations}
    assert rerank["dense + rerank"] == pytest.approx(4.0)
    assert rerank["hybrid + rerank"] == pytest.approx(4.0)


def test_a_scorer_is_called_once_per_first_stage_and_timed_apart() -> None:
    clock, model, pipeline = _clocked()
    compressor = pipeline.base_compressor
    assert isinstance(compressor, CrossEncoderCompressor)
    seen: list[int] = []

    def scorer(
        reranker: CrossEncoderCompressor,
        items: Sequence[tuple[Sequence[Document], str]],
    ) -> list[list[ScoredText]]:
        seen.append(sum(len(docs) for docs, _ in items))
        clock.advance(0.1 * len(items))  # 100 ms a list, elsewhere
        return reranker.score_documents_batch(items, use_cache=False)

    heard: list[tuple[str, int]] = []
    report = evaluate(
        pipeline,
        QUERIES,
        QRELS,
        scorer=scorer,
        progress=lambda stage, n: heard.append((stage, n)),
        clock=clock,
    )
    assert seen == [8, 3, 8]  # dense, bm25, hybrid: one call each
    assert [len(call) for call in model.calls] == [8, 3, 8]  # no local warm-up
    assert heard[-1] == ("rerank", 2)  # all queries, once
    rerank = {c.name: c.latency_ms["rerank"] for c in report.configurations}
    # 100 ms a list plus 1 ms a pair (the model inside the scorer), 2 queries.
    assert rerank["dense + rerank"] == pytest.approx((200 + 8) / 2)
    assert rerank["bm25 + rerank"] == pytest.approx((200 + 3) / 2)


def test_default_first_stages_follow_what_the_store_can_search() -> None:
    embeddings = AxisEmbeddings(WORDS)
    with_keywords = FaissVectorStore.from_documents(DOCS, embeddings).as_retriever()
    without = FaissVectorStore.from_documents(
        DOCS, embeddings, bm25=False
    ).as_retriever()
    foreign = WordRetriever(docs=DOCS)
    assert keyword_search_available(with_keywords)
    assert not keyword_search_available(without)
    assert not keyword_search_available(foreign)
    assert default_first_stages(with_keywords) == ("dense", "bm25", "hybrid")
    assert default_first_stages(without) == ("dense",)
    assert default_first_stages(foreign) == ()
    report = evaluate(without, QUERIES, QRELS)
    assert [c.name for c in report.configurations] == ["dense"]
    with pytest.raises(ValueError, match=r"no keyword \(BM25\) index.*'bm25'") as err:
        evaluate(without, QUERIES, QRELS, first_stages=["dense", "bm25"])
    assert "first_stages=('dense',)" in str(err.value)


def test_a_retriever_that_is_not_the_stores_is_one_first_stage() -> None:
    pipeline = build_reranking_retriever(
        first_stage=WordRetriever(docs=DOCS), reranker=TableCrossEncoder({"red": 2.0})
    )
    report = evaluate(pipeline, QUERIES, QRELS)
    assert [(c.name, c.first_stage) for c in report.configurations] == [
        ("first stage", "first stage"),
        ("first stage + rerank", "first stage"),
        ("first stage + rerank, RRF", "first stage"),
    ]
    with pytest.raises(ValueError, match=r"needs its retriever.*got a WordRetriever"):
        evaluate(pipeline, QUERIES, QRELS, first_stages=["dense"])


@pytest.mark.parametrize(
    ("first_stages", "error", "message"),
    [
        (["sparse"], ValueError, r"'sparse' is not a first stage; use one or more"),
        (["dense", "dense"], ValueError, r"names 'dense' twice"),
        ([], ValueError, r"first_stages is empty"),
        ("hybrid", TypeError, r"a sequence of names.*first_stages=\('hybrid',\)"),
    ],
)
def test_bad_first_stages_are_named(
    first_stages: object, error: type[Exception], message: str
) -> None:
    store = FaissVectorStore.from_documents(DOCS, AxisEmbeddings(WORDS))
    with pytest.raises(error, match=message):
        evaluate(store.as_retriever(), QUERIES, QRELS, first_stages=first_stages)  # type: ignore[arg-type]


def test_dense_keeps_the_retrievers_own_dense_search() -> None:
    store = FaissVectorStore.from_documents(DOCS, AxisEmbeddings(WORDS))
    # Relevance (1 + cosine) / 2 >= 0.99 keeps only the exact match "red";
    # the threshold is dense's alone, so BM25 and hybrid still run.
    retriever = store.as_retriever(
        search_type="similarity_score_threshold", score_threshold=0.99, k=4
    )
    report = evaluate(retriever, {"a": "red"}, {"a": {"red": 1}})
    runs = {c.name: c.run["a"] for c in report.configurations}
    assert list(runs["dense"]) == ["red"]
    assert set(runs["bm25"]) == {"red", "apple"}
    assert len(runs["hybrid"]) == 4
    # A retriever set to hybrid still gives plain similarity as "dense".
    hybrid_default = store.as_retriever(search_type="hybrid", k=4)
    again = evaluate(
        hybrid_default, {"a": "red"}, {"a": {"red": 1}}, first_stages=["dense"]
    )
    plain = evaluate(
        store.as_retriever(k=4), {"a": "red"}, {"a": {"red": 1}}, first_stages=["dense"]
    )
    assert again.configurations[0].run == plain.configurations[0].run
