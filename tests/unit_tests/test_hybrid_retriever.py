"""`search_type="bm25"` and `"hybrid"` on FaissRetriever, and their options."""

from __future__ import annotations

import pytest
from doubles import AxisEmbeddings
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.runnables import ConfigurableField
from pydantic import ValidationError

from langchain_ce_rerank import FaissRetriever, FaissVectorStore
from langchain_ce_rerank.store.fusion import DEFAULT_ALPHA, DEFAULT_RRF_K

# The dense side knows only these words; identifiers are invisible to it.
WORDS = ["red", "green", "blue", "cat"]
SIDES = ("dense_score", "dense_rank", "bm25_score", "bm25_rank")


@pytest.fixture
def store() -> FaissVectorStore:
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    store.add_texts(
        [
            "red",
            "red green",
            "blue cat",
            "error E0425 in red code",
            "setInterval runs a blue timer",
            "green cat",
        ],
        [{"src": s} for s in ("a", "b", "a", "b", "a", "b")],
        ids=["r", "rg", "bc", "err", "timer", "gc"],
    )
    return store


def _ids(docs: list[Document]) -> list[str | None]:
    return [d.id for d in docs]


def test_bm25_ranks_by_keywords_with_its_scores(store: FaissVectorStore) -> None:
    docs = store.as_retriever(search_type="bm25", k=3).invoke("E0425")
    assert _ids(docs) == ["err"]
    meta = docs[0].metadata
    assert meta["bm25_rank"] == 1
    assert meta["bm25_score"] > 0
    assert meta["retrieval_score"] == meta["bm25_score"]
    assert meta["retrieval_rank"] == 1
    assert (meta["dense_score"], meta["dense_rank"]) == (None, None)
    expected = store.bm25_search_with_score("E0425", k=3)
    assert meta["bm25_score"] == pytest.approx(expected[0][1])


def test_hybrid_finds_what_only_one_side_can_see(store: FaissVectorStore) -> None:
    dense = store.as_retriever(k=2).invoke("setInterval blue")
    assert "timer" in _ids(dense)  # "blue" is seen by both sides
    dense_only = store.as_retriever(k=1).invoke("setInterval")
    assert _ids(dense_only) != ["timer"]  # the dense side cannot read names
    hybrid = store.as_retriever(search_type="hybrid", k=1).invoke("setInterval")
    assert _ids(hybrid) == ["timer"]


def test_hybrid_metadata_holds_both_sides_and_the_fused_rrf(
    store: FaissVectorStore,
) -> None:
    docs = store.as_retriever(search_type="hybrid", k=6).invoke("red E0425")
    assert [d.metadata["retrieval_rank"] for d in docs] == list(range(1, 7))
    scores = [d.metadata["retrieval_score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    dense = {d.id: s for d, s in store.similarity_search_with_score("red E0425", 20)}
    bm25 = {d.id: s for d, s in store.bm25_search_with_score("red E0425", 20)}
    for doc in docs:
        meta = doc.metadata
        assert set(SIDES) <= set(meta)
        expected = 0.0
        if meta["dense_rank"] is not None:
            assert meta["dense_score"] == pytest.approx(dense[doc.id])
            expected += 2 * DEFAULT_ALPHA / (DEFAULT_RRF_K + meta["dense_rank"])
        if meta["bm25_rank"] is not None:
            assert meta["bm25_score"] == pytest.approx(bm25[doc.id])
            expected += 2 * (1 - DEFAULT_ALPHA) / (DEFAULT_RRF_K + meta["bm25_rank"])
        assert meta["retrieval_score"] == pytest.approx(expected)
    assert next(d for d in docs if d.id == "err").metadata["bm25_rank"] == 1
    assert {d.id for d in docs if d.metadata["bm25_rank"] is None} >= {"bc", "gc"}


def test_depth_per_side_limits_the_candidates(store: FaissVectorStore) -> None:
    docs = store.as_retriever(
        search_type="hybrid", k=6, dense_depth=1, bm25_depth=1
    ).invoke("red E0425")
    assert len(docs) <= 2
    assert all(
        d.metadata["dense_rank"] in (None, 1) and d.metadata["bm25_rank"] in (None, 1)
        for d in docs
    )


def test_every_setting_can_change_per_call(store: FaissVectorStore) -> None:
    retriever = store.as_retriever(search_type="hybrid", k=6)
    dense_first = retriever.invoke("red setInterval", alpha=1.0)
    bm25_first = retriever.invoke("red setInterval", alpha=0.0)
    assert dense_first[0].metadata["dense_rank"] == 1
    assert bm25_first[0].metadata["bm25_rank"] == 1
    assert dense_first[0].id != bm25_first[0].id
    weighted = retriever.invoke("red setInterval", fusion="weighted", k=2)
    assert len(weighted) == 2
    assert weighted[0].metadata["retrieval_score"] <= 1.0
    assert _ids(retriever.invoke("setInterval", search_type="bm25")) == ["timer"]
    flat = retriever.invoke("red setInterval", rrf_k=1000)
    assert flat[0].metadata["retrieval_score"] <= 2 / 1001
    assert retriever.alpha == 0.7  # per-call values never stick


def test_configurable_fields_and_batch_with_settings_per_input(
    store: FaissVectorStore,
) -> None:
    retriever = store.as_retriever(search_type="hybrid", k=1).configurable_fields(
        alpha=ConfigurableField(id="alpha"),
        search_type=ConfigurableField(id="search_type"),
    )
    results = retriever.batch(
        ["red setInterval", "red setInterval", "setInterval"],
        config=[
            {"configurable": {"alpha": 1.0}},
            {"configurable": {"alpha": 0.0}},
            {"configurable": {"search_type": "bm25"}},
        ],
    )
    assert results[0][0].metadata["dense_rank"] == 1
    assert results[1][0].metadata["bm25_rank"] == 1
    assert results[0][0].id != results[1][0].id
    assert _ids(results[2]) == ["timer"]


# A repeated query, one of stopwords only (dense fallback), one of unknown words.
BATCH = ["red E0425", "blue", "setInterval", "the of and", "red E0425", "zebra cat"]


def _view(results: list[list[Document]]) -> list[list[tuple]]:
    """Ids and every metadata value (floats rounded: BLAS may sum rows in
    another order for one query than for several)."""
    return [
        [
            (
                d.id,
                {
                    k: round(v, 6) if isinstance(v, float) else v
                    for k, v in sorted(d.metadata.items())
                },
            )
            for d in docs
        ]
        for docs in results
    ]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Rows of every FAISS search, and queries of every BM25 scoring pass."""
    from langchain_ce_rerank.store import faiss_index
    from langchain_ce_rerank.store.bm25 import BM25Index

    seen: dict[str, list[int]] = {"faiss": [], "bm25": []}
    search, search_many = faiss_index.search, BM25Index.search_many

    def counting_faiss(index, queries, k):  # type: ignore[no-untyped-def]
        seen["faiss"].append(len(queries))
        return search(index, queries, k)

    def counting_bm25(self, terms, k, mask):  # type: ignore[no-untyped-def]
        seen["bm25"].append(len(terms))
        return search_many(self, terms, k, mask)

    monkeypatch.setattr(faiss_index, "search", counting_faiss)
    monkeypatch.setattr(BM25Index, "search_many", counting_bm25)
    return seen


class _Starts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.queries: list[str] = []

    def on_retriever_start(self, serialized, query, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.queries.append(query)


SETTINGS = [
    {"search_type": "bm25", "k": 3},
    {"search_type": "bm25", "k": 6, "filter": {"src": "a"}},
    {"search_type": "hybrid", "k": 3},
    {"search_type": "hybrid", "k": 4, "filter": lambda m: m["src"] == "b"},
    {"search_type": "hybrid", "k": 5, "fusion": "weighted", "alpha": 0.3},
    {"search_type": "hybrid", "k": 2, "dense_depth": 1, "bm25_depth": 3, "rrf_k": 5},
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("where", ["constructor", "call"])
def test_batch_searches_each_side_once_and_equals_invoke(
    store: FaissVectorStore,
    calls: dict[str, list[int]],
    settings: dict,
    where: str,
) -> None:
    retriever = (
        store.as_retriever(**settings)
        if where == "constructor"
        else (store.as_retriever())
    )
    per_call = {} if where == "constructor" else settings
    expected = [retriever.invoke(q, **per_call) for q in BATCH]
    calls["faiss"].clear()
    calls["bm25"].clear()
    handler = _Starts()
    results = retriever.batch(BATCH, {"callbacks": [handler]}, **per_call)
    assert _view(results) == _view(expected)
    distinct = len(set(BATCH))
    assert calls["bm25"] == [distinct]  # every query scored in one pass
    if settings["search_type"] == "hybrid":
        assert calls["faiss"] == [distinct]  # every query embedded and searched once
    else:
        assert calls["faiss"] == [1]  # only the stopword query falls back to dense
    assert sorted(handler.queries) == sorted(BATCH)  # each run still traced
    fallback = results[BATCH.index("the of and")]
    assert fallback
    assert all(d.metadata["bm25_rank"] is None for d in fallback)


@pytest.mark.parametrize("search_type", ["bm25", "hybrid"])
async def test_abatch_searches_each_side_once_and_equals_invoke(
    store: FaissVectorStore, calls: dict[str, list[int]], search_type: str
) -> None:
    retriever = store.as_retriever(search_type=search_type, k=3, filter={"src": "a"})
    expected = [retriever.invoke(q) for q in BATCH]
    calls["bm25"].clear()
    handler = _Starts()
    results = await retriever.abatch(BATCH, {"callbacks": [handler]})
    assert _view(results) == _view(expected)
    assert calls["bm25"] == [len(set(BATCH))]
    assert sorted(handler.queries) == sorted(BATCH)


@pytest.mark.parametrize("search_type", ["bm25", "hybrid"])
def test_a_repeated_query_gets_documents_of_its_own(
    store: FaissVectorStore, search_type: str
) -> None:
    first, second = store.as_retriever(search_type=search_type, k=2).batch(
        ["red E0425", "red E0425"]
    )
    assert _view([first]) == _view([second])
    first[0].metadata["src"] = "changed"
    assert second[0].metadata["src"] != "changed"
    assert "changed" not in {d.metadata["src"] for d in store.get_by_ids(store.ids)}


def test_settings_per_input_in_one_batch_equal_invoke(store: FaissVectorStore) -> None:
    fields = ("search_type", "alpha", "k", "fusion")
    retriever = store.as_retriever(search_type="hybrid", k=3).configurable_fields(
        **{name: ConfigurableField(id=name) for name in fields}
    )
    inputs = [
        ("red setInterval", {"alpha": 1.0}),
        ("red setInterval", {"alpha": 0.0}),
        ("setInterval", {"search_type": "bm25"}),
        ("blue cat", {"search_type": "similarity", "k": 2}),
        ("red E0425", {"fusion": "weighted"}),
        ("the of and", {"search_type": "bm25", "k": 1}),
    ]
    results = retriever.batch(
        [q for q, _ in inputs], [{"configurable": c} for _, c in inputs]
    )
    expected = [retriever.with_config(configurable=c).invoke(q) for q, c in inputs]
    assert _view(results) == _view(expected)


def test_a_bad_query_fails_alone_and_the_rest_are_still_batched(
    store: FaissVectorStore, calls: dict[str, list[int]]
) -> None:
    retriever = store.as_retriever(search_type="hybrid", k=2)
    expected = retriever.invoke("blue")
    calls["bm25"].clear()
    results = retriever.batch(["red E0425", "  ", "blue"], return_exceptions=True)
    assert isinstance(results[1], ValueError)
    assert "query is empty" in str(results[1])
    assert _view([results[2]]) == _view([expected])
    assert calls["bm25"] == [2]


async def test_ainvoke_carries_both_sides(store: FaissVectorStore) -> None:
    retriever = store.as_retriever(search_type="hybrid", k=2)
    docs = await retriever.ainvoke("red E0425")
    assert docs == retriever.invoke("red E0425")
    assert set(SIDES) <= set(docs[0].metadata)


@pytest.mark.parametrize("search_type", ["bm25", "hybrid"])
@pytest.mark.parametrize("query", ["the of and", "?!", "🙂"])
def test_a_query_without_indexed_terms_gets_dense_results(
    store: FaissVectorStore, search_type: str, query: str
) -> None:
    docs = store.as_retriever(search_type=search_type, k=3).invoke(query)
    dense = store.as_retriever(k=3).invoke(query)
    assert _ids(docs) == _ids(dense)
    assert all(d.metadata["bm25_rank"] is None for d in docs)
    assert [d.metadata["dense_rank"] for d in docs] == [1, 2, 3]


@pytest.mark.parametrize("search_type", ["bm25", "hybrid"])
@pytest.mark.parametrize(
    "filter_", [{"src": "a"}, lambda m: m["src"] == "a"], ids=["dict", "callable"]
)
def test_filters_apply_to_both_sides(
    store: FaissVectorStore, search_type: str, filter_: object
) -> None:
    retriever = store.as_retriever(search_type=search_type, k=6, filter=filter_)
    docs = retriever.invoke("red E0425 green cat")
    assert docs
    assert all(d.metadata["src"] == "a" for d in docs)
    assert "err" not in _ids(docs)


def test_writes_reach_both_sides(store: FaissVectorStore) -> None:
    retriever = store.as_retriever(search_type="hybrid", k=1)
    assert _ids(retriever.invoke("E0599")) != ["new"]
    store.add_texts(["fix E0599 by importing the trait"], ids=["new"])
    assert _ids(retriever.invoke("E0599")) == ["new"]
    store.delete(["new"])
    assert "new" not in _ids(
        store.as_retriever(search_type="hybrid", k=9).invoke("E0599")
    )


def test_bad_settings_fail_at_construction(store: FaissVectorStore) -> None:
    for bad in (
        {"alpha": 1.5},
        {"rrf_k": -1},
        {"fusion": "sum"},
        {"dense_depth": 0},
        {"search_type": "keyword"},
        {"search_type": "hybrid", "score_threshold": 0.5},
    ):
        with pytest.raises(ValidationError):
            FaissRetriever(vectorstore=store, **bad)


def test_bad_per_call_settings_say_what_is_wrong(store: FaissVectorStore) -> None:
    retriever = store.as_retriever(search_type="hybrid")
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        retriever.invoke("red", alpha=2)
    with pytest.raises(ValueError, match="fusion must be 'rrf' or 'weighted'"):
        retriever.invoke("red", fusion="max")
    with pytest.raises(ValueError, match="bm25_depth must be a positive integer"):
        retriever.invoke("red", bm25_depth=0)
    with pytest.raises(ValueError, match="search_type must be one of"):
        retriever.invoke("red", search_type="keyword")
    with pytest.raises(ValueError, match=r"score_threshold .* does not apply"):
        retriever.invoke("red", score_threshold=0.2)


def test_both_sides_read_one_state_while_another_thread_writes() -> None:
    """A document is never in one side's results and missing from the other's."""
    import threading
    import time

    store = FaissVectorStore(AxisEmbeddings(WORDS))
    store.add_texts([f"blue filler{i}" for i in range(50)])
    store.bm25_search_with_score("blue")  # bm25s imported before the race starts
    retriever = store.as_retriever(
        search_type="hybrid", k=500, dense_depth=500, bm25_depth=500
    )
    done = threading.Event()

    def write() -> None:
        for round_ in range(60):
            ids = [f"z{round_}-{i}" for i in range(5)]
            store.add_texts(["red zebra"] * 5, ids=ids)
            time.sleep(0.001)  # let searches run between the writes
            store.delete(ids[:3])
            time.sleep(0.001)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    searches = 0
    try:
        while not done.is_set() or searches < 5:
            for doc in retriever.invoke("red zebra"):
                if str(doc.id).startswith("z"):
                    # Every zebra document is found by both sides (it holds the
                    # term and is among all the dense candidates), or by none.
                    assert doc.metadata["dense_rank"] is not None, doc.id
                    assert doc.metadata["bm25_rank"] is not None, doc.id
            searches += 1
    finally:
        writer.join()
    assert searches >= 5


def test_weighted_fusion_reads_l2_distances_as_lower_is_better() -> None:
    store = FaissVectorStore(AxisEmbeddings(WORDS), distance_strategy="l2")
    store.add_texts(["red", "red green", "blue", "cat red"], ids=["r", "rg", "b", "cr"])
    dense = store.as_retriever(k=4).invoke("red")
    weighted = store.as_retriever(
        search_type="hybrid", fusion="weighted", alpha=1.0, k=4
    ).invoke("red")
    assert _ids(weighted) == _ids(dense)
    assert weighted[0].metadata["retrieval_score"] == pytest.approx(1.0)
    assert weighted[0].metadata["dense_score"] < weighted[-1].metadata["dense_score"]


def test_the_reranking_retriever_passes_hybrid_settings_per_call(
    store: FaissVectorStore,
) -> None:
    from doubles import WordOverlapCrossEncoder

    from langchain_ce_rerank import build_reranking_retriever

    retriever = build_reranking_retriever(
        vectorstore=store, reranker=WordOverlapCrossEncoder(), k=2, top_n=2
    )
    # Dense alone cannot see an identifier; the keyword side, asked per call,
    # hands it to the reranker with both sides' metadata.
    assert "timer" not in _ids(retriever.invoke("setInterval"))
    for docs in (
        retriever.invoke("setInterval", search_type="hybrid"),
        retriever.batch(["setInterval", "E0425"], search_type="hybrid")[0],
        retriever.with_config(configurable={"search_type": "bm25"}).invoke(
            "setInterval"
        ),
    ):
        assert "timer" in _ids(docs)
        timer = next(d for d in docs if d.id == "timer")
        assert timer.metadata["bm25_rank"] == 1
        assert "relevance_score" in timer.metadata
    weighted = retriever.invoke(
        "setInterval blue", search_type="hybrid", fusion="weighted", alpha=0.0
    )
    assert _ids(weighted)[0] == "timer"
