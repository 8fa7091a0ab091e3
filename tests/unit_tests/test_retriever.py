from __future__ import annotations

import pytest
from doubles import AxisEmbeddings
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_ce_rerank import FaissRetriever, FaissVectorStore
from langchain_ce_rerank.store import faiss_index

WORDS = ["red", "green", "blue", "cat"]


@pytest.fixture
def store() -> FaissVectorStore:
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    store.add_texts(
        ["red", "red green", "blue", "cat", "red cat"],
        [{"src": "a"}, {"src": "b"}, {"src": "a"}, {"src": "b"}, {"src": "a"}],
        ids=["r", "rg", "b", "c", "rc"],
    )
    return store


def test_documents_carry_id_score_and_rank(store: FaissVectorStore) -> None:
    docs = store.as_retriever(k=3).invoke("red")
    assert [d.metadata["retrieval_rank"] for d in docs] == [1, 2, 3]
    assert docs[0].id == "r"
    assert docs[0].metadata["retrieval_score"] == pytest.approx(1.0, abs=1e-5)
    scores = [d.metadata["retrieval_score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(s, float) for s in scores)
    assert docs[0].metadata["src"] == "a"


def test_scores_match_the_store(store: FaissVectorStore) -> None:
    docs = store.as_retriever(k=5).invoke("red green")
    expected = store.similarity_search_with_score("red green", k=5)
    assert [(d.id, d.metadata["retrieval_score"]) for d in docs] == [
        (d.id, s) for d, s in expected
    ]


def test_returned_documents_are_copies(store: FaissVectorStore) -> None:
    doc = store.as_retriever(k=1).invoke("red")[0]
    doc.metadata["src"] = "changed"
    assert store.get_by_ids(["r"])[0].metadata == {"src": "a"}
    assert "retrieval_score" not in store.get_by_ids(["r"])[0].metadata


def test_k_from_constructor_and_from_invoke(store: FaissVectorStore) -> None:
    retriever = FaissRetriever(vectorstore=store, k=2)
    assert len(retriever.invoke("red")) == 2
    assert len(retriever.invoke("red", k=4)) == 4


def test_k_below_one_is_rejected_at_construction(store: FaissVectorStore) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        FaissRetriever(vectorstore=store, k=0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        store.as_retriever().invoke("red", k=0)


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_blank_query_is_an_error(store: FaissVectorStore, query: str) -> None:
    with pytest.raises(ValueError, match="query is empty or only whitespace"):
        store.as_retriever().invoke(query)


def test_unknown_options_are_errors(store: FaissVectorStore) -> None:
    with pytest.raises(ValidationError, match="top_k"):
        store.as_retriever(top_k=3)
    with pytest.raises(ValidationError, match="unknown search_kwargs"):
        store.as_retriever(search_kwargs={"kk": 3})
    with pytest.raises(TypeError, match="unexpected argument"):
        store.as_retriever().invoke("red", kk=3)


def test_langchain_style_search_kwargs(store: FaissVectorStore) -> None:
    retriever = store.as_retriever(search_kwargs={"k": 2, "filter": {"src": "b"}})
    assert retriever.k == 2
    assert {d.id for d in retriever.invoke("red")} == {"rg", "c"}


def test_filter(store: FaissVectorStore) -> None:
    docs = store.as_retriever(k=3, filter={"src": "a"}).invoke("cat")
    assert docs[0].id == "rc"
    assert {d.id for d in docs} == {"rc", "r", "b"}  # r and b tie for second
    assert [d.metadata["retrieval_rank"] for d in docs] == [1, 2, 3]
    override = store.as_retriever(k=3).invoke("cat", filter={"src": "b"})
    assert {d.id for d in override} == {"c", "rg"}


def test_mmr(store: FaissVectorStore) -> None:
    docs = store.as_retriever(
        search_type="mmr", k=2, fetch_k=5, lambda_mult=0.2
    ).invoke("red")
    assert docs[0].id == "r"
    assert docs[1].id in {"b", "c"}  # diversity beats the near-duplicates rg, rc
    assert docs[1].metadata["retrieval_rank"] == 2
    assert docs[0].metadata["retrieval_score"] == pytest.approx(1.0, abs=1e-5)


def test_similarity_score_threshold(store: FaissVectorStore) -> None:
    retriever = store.as_retriever(
        search_type="similarity_score_threshold", k=5, score_threshold=0.99
    )
    assert [d.id for d in retriever.invoke("red")] == ["r"]
    with pytest.raises(ValidationError, match="needs score_threshold"):
        store.as_retriever(search_type="similarity_score_threshold")
    with pytest.raises(ValidationError, match="search_type"):
        store.as_retriever(search_type="nearest")


async def test_ainvoke_carries_scores(store: FaissVectorStore) -> None:
    docs = await store.as_retriever(k=2).ainvoke("red", k=3)
    assert len(docs) == 3
    assert docs[0].metadata["retrieval_rank"] == 1
    assert docs[0].metadata["retrieval_score"] == pytest.approx(1.0, abs=1e-5)


def test_batch(store: FaissVectorStore) -> None:
    results = store.as_retriever(k=1).batch(["red", "blue"])
    assert [r[0].id for r in results] == ["r", "b"]


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows of every FAISS search call the store makes."""
    calls: list[int] = []
    search = faiss_index.search

    def counting(index, queries, k):
        calls.append(len(queries))
        return search(index, queries, k)

    monkeypatch.setattr(faiss_index, "search", counting)
    return calls


class _Starts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.queries: list[str] = []

    def on_retriever_start(self, serialized, query, **kwargs) -> None:
        self.queries.append(query)


def _view(results: list[list[Document]]) -> list[list[tuple]]:
    return [
        [
            (
                d.id,
                d.metadata["retrieval_rank"],
                round(d.metadata["retrieval_score"], 5),
            )
            for d in docs
        ]
        for docs in results
    ]


QUERIES = ["red", "blue", "cat", "red green", "green"]


@pytest.mark.parametrize(
    ("options", "call_kwargs"),
    [
        ({"k": 2}, {}),
        ({"k": 3}, {"k": 1}),
        ({"k": 2, "filter": {"src": "a"}}, {}),
        ({"k": 2, "filter": lambda m: m["src"] == "b", "fetch_k": 1}, {}),
        (
            {
                "search_type": "similarity_score_threshold",
                "score_threshold": 0.8,
                "k": 4,
            },
            {},
        ),
    ],
)
def test_batch_searches_faiss_once_and_equals_invoke(
    store: FaissVectorStore, options: dict, call_kwargs: dict, searches: list[int]
) -> None:
    retriever = store.as_retriever(**options)
    expected = [retriever.invoke(q, **call_kwargs) for q in QUERIES]
    searches.clear()
    handler = _Starts()
    results = retriever.batch(QUERIES, {"callbacks": [handler]}, **call_kwargs)
    assert _view(results) == _view(expected)
    assert searches[0] == len(QUERIES)  # all queries in one call
    if "filter" not in options:
        assert searches == [len(QUERIES)]
    assert sorted(handler.queries) == sorted(QUERIES)  # each run still traced


async def test_abatch_searches_faiss_once_and_equals_invoke(
    store: FaissVectorStore, searches: list[int]
) -> None:
    retriever = store.as_retriever(k=2)
    expected = [retriever.invoke(q) for q in QUERIES]
    searches.clear()
    handler = _Starts()
    results = await retriever.abatch(QUERIES, {"callbacks": [handler]})
    assert _view(results) == _view(expected)
    assert searches == [len(QUERIES)]
    assert sorted(handler.queries) == sorted(QUERIES)


def test_batch_gives_each_query_its_own_documents(store: FaissVectorStore) -> None:
    first, second = store.as_retriever(k=2).batch(["red", "red"])
    assert _view([first]) == _view([second])
    first[0].metadata["src"] = "changed"
    assert second[0].metadata["src"] == "a"
    assert store.get_by_ids(["r"])[0].metadata["src"] == "a"


def test_batch_reports_a_bad_query_like_invoke(store: FaissVectorStore) -> None:
    results = store.as_retriever(k=1).batch(["red", ""], return_exceptions=True)
    assert results[0][0].id == "r"
    assert isinstance(results[1], ValueError)
    with pytest.raises(TypeError, match="unexpected argument"):
        store.as_retriever(k=1).batch(["red", "blue"], nonsense=1)


def test_a_bad_query_leaves_the_rest_of_the_batch_batched(
    store: FaissVectorStore, searches: list[int]
) -> None:
    results = store.as_retriever(k=1).batch(["red", "", "blue"], return_exceptions=True)
    assert [results[0][0].id, results[2][0].id] == ["r", "b"]
    assert isinstance(results[1], ValueError)
    assert searches == [2]


class _Refuses(AxisEmbeddings):
    """Refuses to embed the query "boom", as a remote embedding API might."""

    def embed_query(self, text: str) -> list[float]:
        if text == "boom":
            msg = "the embedding service refused 'boom'"
            raise RuntimeError(msg)
        return super().embed_query(text)


@pytest.mark.parametrize("search_type", ["similarity", "hybrid"])
def test_a_batched_search_that_fails_reports_per_query_like_invoke(
    search_type: str,
) -> None:
    store = FaissVectorStore(_Refuses(WORDS))
    store.add_texts(["red", "blue"], ids=["r", "b"])
    retriever = store.as_retriever(search_type=search_type, k=1)
    results = retriever.batch(["red", "boom", "blue"], return_exceptions=True)
    assert [results[0][0].id, results[2][0].id] == ["r", "b"]
    assert isinstance(results[1], RuntimeError)
    assert "refused 'boom'" in str(results[1])
    with pytest.raises(RuntimeError, match="refused 'boom'"):
        retriever.batch(["red", "boom"])


def test_mmr_batch_equals_invoke(store: FaissVectorStore) -> None:
    retriever = store.as_retriever(search_type="mmr", k=2, fetch_k=4)
    assert _view(retriever.batch(QUERIES)) == _view(
        [retriever.invoke(q) for q in QUERIES]
    )


def test_score_threshold_applies_whatever_the_search_type(
    store: FaissVectorStore,
) -> None:
    # Seen by a user: accepted per call and silently ignored by "similarity".
    retriever = store.as_retriever(k=5)
    everything = retriever.invoke("red")
    assert len(everything) == 5
    kept = retriever.invoke("red", score_threshold=0.9)
    relevance = store._select_relevance_score_fn()
    assert 0 < len(kept) < len(everything)
    assert all(relevance(d.metadata["retrieval_score"]) >= 0.9 for d in kept)
    assert [d.id for d in kept] == [d.id for d in everything[: len(kept)]]
    mmr = store.as_retriever(search_type="mmr", k=5, score_threshold=0.9)
    assert all(
        relevance(d.metadata["retrieval_score"]) >= 0.9 for d in mmr.invoke("red")
    )


def test_a_store_that_is_not_faiss_is_refused() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    with pytest.raises(ValidationError, match="searches a FaissVectorStore"):
        FaissRetriever(
            vectorstore=InMemoryVectorStore(DeterministicFakeEmbedding(size=4))
        )
