"""`diversity=λ`: maximal marginal relevance after reranking, in every door.

The scenes are built so that the first stage's embeddings and the word-set
fallback disagree: "alpha" and "alpha-two" share no word, but their vectors
are almost the same. A door that used the vectors puts "beta" second; one
that fell back to word sets keeps the plain order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
from doubles import TableCrossEncoder
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from pydantic import ValidationError

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    FaissVectorStore,
    Reranker,
    build_reranking_retriever,
)
from langchain_ce_rerank.engine import RankingSettings, ScoredText
from langchain_ce_rerank.engine.diversity import (
    EMBEDDING_KEY,
    cosine_similarities,
    displaced,
    mmr,
    scaled,
    word_set_similarities,
)

VECTORS = {
    "alpha": [1.0, 0.0, 0.0],
    "alpha-two": [0.99, 0.14, 0.0],  # a near-copy by meaning, not by words
    "beta": [0.0, 0.0, 1.0],
    "query": [1.0, 0.1, 0.8],
}
SCORES = {"alpha": 3.0, "alpha-two": 2.9, "beta": 1.0}
TEXTS = ["alpha", "alpha-two", "beta"]
PLAIN = ["alpha", "alpha-two", "beta"]
DIVERSE = ["alpha", "beta", "alpha-two"]


class VectorTable(Embeddings):
    """Embeds the texts of `VECTORS` as given; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [VECTORS[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return VECTORS["query"]


def vectors(texts: list[str]) -> list[list[float]]:
    return [VECTORS[t] for t in texts]


# -- the rule --------------------------------------------------------------------


@pytest.mark.parametrize("lambda_mult", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_mmr_picks_as_langchains_reference_implementation(lambda_mult: float) -> None:
    rng = np.random.default_rng(7)
    embeddings = rng.standard_normal((25, 16))
    query = rng.standard_normal(16)
    relevance = cosine_similarities(np.vstack([query, embeddings]))[0, 1:].tolist()
    by_relevance = sorted(range(25), key=lambda i: -relevance[i])
    ours = mmr(
        by_relevance,
        relevance,
        cosine_similarities(embeddings),
        diversity=1.0 - lambda_mult,
        count=8,
    )
    reference = maximal_marginal_relevance(
        query, embeddings.tolist(), lambda_mult=lambda_mult, k=8
    )
    assert ours == reference


def test_zero_diversity_is_the_plain_order_exactly() -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), top_n=None)
    plain = engine.rank("q", TEXTS)
    assert engine.rank("q", TEXTS, diversity=0.0, embeddings=vectors(TEXTS)) == plain
    assert [TEXTS[r.index] for r in plain] == PLAIN


def test_near_copies_by_embedding_give_way_to_other_documents() -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), top_n=None, diversity=0.5)
    results = engine.rank("q", TEXTS, embeddings=vectors(TEXTS))
    assert [TEXTS[r.index] for r in results] == DIVERSE
    # Scores stay the cross-encoder's; only the order changes.
    assert [r.score for r in results] == [3.0, 1.0, 2.9]
    assert [r.rank for r in results] == [1, 2, 3]


def test_without_embeddings_word_sets_are_compared() -> None:
    texts = ["red apple pie", "Red apple pie!", "green pear tart"]
    table = {texts[0]: 3.0, texts[1]: 2.9, texts[2]: 1.0}
    engine = Reranker(model=TableCrossEncoder(table), top_n=2, diversity=0.5)
    assert [r.index for r in engine.rank("q", texts)] == [0, 2]
    # "alpha" and "alpha-two" share no word: the fallback sees no copy there.
    engine = Reranker(model=TableCrossEncoder(SCORES), top_n=None, diversity=0.5)
    assert [TEXTS[r.index] for r in engine.rank("q", TEXTS)] == [
        "alpha",
        "alpha-two",
        "beta",
    ]


def test_the_first_pick_is_the_most_relevant_even_at_full_diversity() -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), top_n=None, diversity=1.0)
    results = engine.rank("q", TEXTS, embeddings=vectors(TEXTS))
    assert TEXTS[results[0].index] == "alpha"


def test_the_trade_off_does_not_depend_on_the_score_scale() -> None:
    stretched = {text: 100 * score - 7 for text, score in SCORES.items()}
    for table in (SCORES, stretched):
        engine = Reranker(model=TableCrossEncoder(table), top_n=None, diversity=0.5)
        results = engine.rank("q", TEXTS, embeddings=vectors(TEXTS))
        assert [TEXTS[r.index] for r in results] == DIVERSE


def test_with_rrf_the_fused_score_is_the_relevance() -> None:
    engine = Reranker(
        model=TableCrossEncoder(SCORES), top_n=None, diversity=0.3, fusion="rrf"
    )
    # First stage: beta first, so the fused order starts beta, alpha.
    results = engine.rank(
        "q", TEXTS, embeddings=vectors(TEXTS), first_stage_ranks=[2, 3, 1]
    )
    assert TEXTS[results[0].index] == "alpha"
    assert all(r.fused_score is not None for r in results)
    fused_first = max(results, key=lambda r: r.fused_score or 0.0)
    assert fused_first.rank == 1


def test_top_n_keeps_the_first_picks_and_displaced_names_the_left_out() -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), top_n=2, diversity=0.5)
    results = engine.rank("q", TEXTS, embeddings=vectors(TEXTS))
    picked = [r.index for r in results]
    assert [TEXTS[i] for i in picked] == ["alpha", "beta"]
    # Without diversity alpha-two (index 1) would have been kept: dropped for
    # diversity, not for top_n.
    assert displaced([0, 1, 2], picked) == [1]
    assert displaced([0, 1, 2], [0, 1]) == []


def test_scaled_maps_to_the_unit_interval_and_nan_to_the_bottom() -> None:
    assert scaled([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5]
    assert scaled([5.0, 5.0]) == [1.0, 1.0]
    assert scaled([1.0, math.nan, 3.0]) == [0.0, 0.0, 1.0]
    assert scaled([math.nan]) == [0.0]


def test_word_set_similarity_is_the_jaccard_overlap() -> None:
    matrix = word_set_similarities(["Red apple", "red APPLE pie", "", "!"])
    assert matrix[0, 1] == pytest.approx(2 / 3)
    assert matrix[0, 0] == pytest.approx(1.0)
    assert matrix[2, 3] == 0.0  # no words at all: nothing shared
    assert matrix[0, 2] == 0.0


def test_cosines_of_unnormalized_and_zero_vectors() -> None:
    matrix = cosine_similarities([[3.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert matrix[0, 1] == pytest.approx(1 / math.sqrt(2))
    assert matrix[2, 0] == 0.0


def test_mismatched_or_malformed_embeddings_are_refused() -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), diversity=0.5)
    with pytest.raises(ValueError, match="embeddings has 2 vectors for 3 candidates"):
        engine.rank("q", TEXTS, embeddings=vectors(TEXTS)[:2])
    with pytest.raises(ValueError, match=r"one list of .*numbers per candidate"):
        engine.rank("q", TEXTS, embeddings=[[1.0], [1.0, 2.0], [0.0]])
    with pytest.raises(ValueError, match="finite numbers"):
        engine.rank("q", TEXTS, embeddings=[[1.0], [math.nan], [0.0]])
    scored = [ScoredText(1.0), ScoredText(2.0)]
    with pytest.raises(ValueError, match="pass their texts= or embeddings="):
        engine.order(scored)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, True, "0.5", None])
def test_a_bad_diversity_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="diversity must be a number from 0"):
        RankingSettings().for_call(diversity=bad)
    with pytest.raises(ValidationError, match="diversity"):
        CrossEncoderCompressor(model=TableCrossEncoder(), diversity=bad)


# -- the doors and the first stage -------------------------------------------------


def docs_with(vectors_too: bool) -> list[Document]:
    return [
        Document(
            page_content=text,
            id=text,
            metadata={EMBEDDING_KEY: VECTORS[text]} if vectors_too else {},
        )
        for text in TEXTS
    ]


def test_the_compressor_uses_the_first_stages_vectors_when_all_have_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    compressor = CrossEncoderCompressor(model=TableCrossEncoder(SCORES), top_n=None)
    out = compressor.compress_documents(docs_with(True), "q", diversity=0.5)
    assert [d.id for d in out] == DIVERSE
    assert out[1].metadata[EMBEDDING_KEY] == VECTORS["beta"]  # kept as given
    assert [d.id for d in compressor.compress_documents(docs_with(False), "q")] == PLAIN
    partial = docs_with(True)
    partial[2] = docs_with(False)[2]
    with caplog.at_level(logging.WARNING):
        out = compressor.compress_documents(partial, "q", diversity=0.5)
    assert [d.id for d in out] == PLAIN  # word sets: no copy among these
    assert "diversity compares the word sets" in caplog.text


def test_faiss_attaches_its_stored_vectors_only_when_asked() -> None:
    store = FaissVectorStore(VectorTable())
    store.add_texts(TEXTS, ids=TEXTS)
    plain = store.as_retriever(k=3).invoke("query")
    assert all(EMBEDDING_KEY not in d.metadata for d in plain)
    found = store.as_retriever(k=3, include_embeddings=True).invoke("query")
    for doc in found:
        stored = np.asarray(VECTORS[str(doc.id)])
        assert doc.metadata[EMBEDDING_KEY] == pytest.approx(
            (stored / np.linalg.norm(stored)).tolist(), abs=1e-6
        )
        assert all(type(x) is float for x in doc.metadata[EMBEDDING_KEY])
    per_call = store.as_retriever(k=1, search_type="hybrid").invoke(
        "alpha", include_embeddings=True
    )
    assert EMBEDDING_KEY in per_call[0].metadata
    assert store.get_embeddings(["beta", "gone"])[1] is None
    with pytest.raises(ValueError, match="include_embeddings must be True or False"):
        store.as_retriever().invoke("query", include_embeddings="yes")


def test_the_reranking_retriever_asks_faiss_for_vectors_and_hands_none_back() -> None:
    embedding = VectorTable()
    retriever = build_reranking_retriever(
        [Document(page_content=t, id=t) for t in TEXTS],
        embedding=embedding,
        reranker=TableCrossEncoder(SCORES),
        k=3,
        top_n=3,
        diversity=0.5,
    )
    calls = embedding.calls
    found = retriever.invoke("query")
    assert [d.id for d in found] == DIVERSE
    assert all(EMBEDDING_KEY not in d.metadata for d in found)
    assert embedding.calls == calls  # no second embedding pass
    assert [d.id for d in retriever.invoke("query", diversity=0.0)] == PLAIN
    configured = retriever.with_config(configurable={"diversity": 0.0})
    assert [d.id for d in configured.invoke("query")] == PLAIN
    batched = retriever.batch(["query", "query again"], diversity=0.5)
    assert [[d.id for d in docs] for docs in batched] == [DIVERSE, DIVERSE]
    assert all(EMBEDDING_KEY not in d.metadata for docs in batched for d in docs)


def test_vectors_the_user_asked_faiss_for_stay_on_the_documents() -> None:
    store = FaissVectorStore(VectorTable())
    store.add_texts(TEXTS, ids=TEXTS)
    retriever = build_reranking_retriever(
        first_stage=store.as_retriever(k=3, include_embeddings=True),
        reranker=TableCrossEncoder(SCORES),
        diversity=0.5,
    )
    found = retriever.invoke("query")
    assert [d.id for d in found] == DIVERSE
    assert all(EMBEDDING_KEY in d.metadata for d in found)


def test_the_llama_index_postprocessor_compares_node_embeddings() -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_ce_rerank.llama_index import CrossEncoderRerank

    rerank = CrossEncoderRerank(model=TableCrossEncoder(SCORES), top_n=None)
    nodes = [
        NodeWithScore(node=TextNode(text=t, embedding=VECTORS[t]), score=0.5)
        for t in TEXTS
    ]
    out = rerank.postprocess_nodes(nodes, query_str="q", diversity=0.5)
    assert [n.node.text for n in out] == DIVERSE
    bare = [NodeWithScore(node=TextNode(text=t), score=0.5) for t in TEXTS]
    out = rerank.postprocess_nodes(bare, query_str="q", diversity=0.5)
    assert [n.node.text for n in out] == PLAIN


# -- the HTTP server: our extension of Cohere's schema ------------------------------


@asynccontextmanager
async def serving(model: Any) -> AsyncIterator[Any]:
    import asyncio

    import httpx

    from langchain_ce_rerank.serving import ServeSettings, create_app

    app = create_app(Reranker(model=model), ServeSettings(model_name="m"))
    async with app.router.lifespan_context(app):
        assert await asyncio.to_thread(app.state.ce_rerank.batcher.ready.wait, 30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as c:
            yield c


async def test_the_server_takes_diversity_as_an_extension_field() -> None:
    documents = ["red apple pie", "Red apple pie!", "green pear tart"]
    table = {documents[0]: 3.0, documents[1]: 2.9, documents[2]: 1.0}
    request = {"query": "q", "documents": documents, "top_n": 2}
    async with serving(TableCrossEncoder(table)) as client:
        plain = (await client.post("/v2/rerank", json=request)).json()
        diverse = (
            await client.post("/v2/rerank", json={**request, "diversity": 0.5})
        ).json()
        refused = await client.post("/v2/rerank", json={**request, "diversity": 2})
    assert [r["index"] for r in plain["results"]] == [0, 1]
    assert [r["index"] for r in diverse["results"]] == [0, 2]
    assert [r["relevance_score"] for r in diverse["results"]] == [3.0, 1.0]
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "diversity"
