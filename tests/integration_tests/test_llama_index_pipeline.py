"""`CrossEncoderRerank` inside a real LlamaIndex query engine, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from doubles import WordOverlapCrossEncoder
from llama_index.core import MockEmbedding, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.llama_index import CrossEncoderRerank

CORPUS = Path(__file__).parents[1] / "data" / "stdlib-docs" / "corpus.jsonl"
QUERY = "serialize a python object to a JSON formatted string"
DOCS = 40


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    """40 real standard-library docstrings; a constant mock embedding (the
    first stage is arbitrary, so only the reranker can put the right ones on top).
    """
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()][:DOCS]
    nodes = [
        TextNode(text=row["text"], id_=row["_id"], metadata={"title": row["title"]})
        for row in rows
    ]
    return VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))


def _check_reranked(
    index: VectorStoreIndex, out: list[NodeWithScore], expected: list[float]
) -> None:
    assert [n.score for n in out] == expected
    assert all(type(n.score) is float for n in out)
    assert sorted(expected, reverse=True) == expected
    ranks = [n.node.metadata["retrieval_rank"] for n in out]
    assert all(1 <= r <= DOCS for r in ranks)
    assert all(type(n.node.metadata["retrieval_score"]) is float for n in out)
    assert ranks != sorted(ranks)  # the first stage's order was changed
    # The docstore's nodes are the originals: nothing was written into them.
    for item in out:
        stored = index.docstore.get_node(item.node.node_id)
        assert stored.metadata == {"title": item.node.metadata["title"]}


def _expected_overlap(index: VectorStoreIndex, top_n: int) -> list[float]:
    texts = [
        node.get_content(metadata_mode=MetadataMode.EMBED)
        for node in index.docstore.docs.values()
    ]
    scores = WordOverlapCrossEncoder().score([(QUERY, t) for t in texts])
    return sorted(scores, reverse=True)[:top_n]


def test_query_engine_reranks_with_float_scores(index: VectorStoreIndex) -> None:
    rerank = CrossEncoderRerank(model=WordOverlapCrossEncoder(), top_n=3)
    engine = index.as_query_engine(
        similarity_top_k=DOCS, node_postprocessors=[rerank], llm=MockLLM()
    )
    response = engine.query(QUERY)
    out = response.source_nodes
    _check_reranked(index, out, _expected_overlap(index, 3))
    assert out[0].node.node_id == "json.dumps"
    assert "retrieval_score" not in out[0].node.get_content(MetadataMode.LLM)


async def test_async_query_engine_reranks(index: VectorStoreIndex) -> None:
    rerank = CrossEncoderRerank(model=WordOverlapCrossEncoder(), top_n=4)
    engine = index.as_query_engine(
        similarity_top_k=DOCS, node_postprocessors=[rerank], llm=MockLLM()
    )
    response = await engine.aquery(QUERY)
    _check_reranked(index, response.source_nodes, _expected_overlap(index, 4))


def test_the_real_model_through_the_loading_path(
    index: VectorStoreIndex, standin_ce_path: Path
) -> None:
    rerank = CrossEncoderRerank(model=str(standin_ce_path), device="cpu", top_n=3)
    engine = index.as_query_engine(
        similarity_top_k=10, node_postprocessors=[rerank], llm=MockLLM()
    )
    out = engine.query(QUERY).source_nodes
    assert len(out) == 3
    # The same scores the engine gives the nodes' EMBED text directly.
    reference = Reranker(model=str(standin_ce_path), device="cpu").score(
        QUERY, [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in out]
    )
    assert [n.score for n in out] == pytest.approx(reference, abs=1e-5)
    assert all(type(n.score) is float for n in out)
    assert [n.score for n in out] == sorted((n.score for n in out), reverse=True)
    assert rerank.cache_info().misses == 10
