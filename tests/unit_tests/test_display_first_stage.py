"""Which first-stage side found each document, in `explain()` and `ce-rerank query`."""

from __future__ import annotations

from typing import Any

import pytest
from doubles import AxisEmbeddings, TableCrossEncoder
from langchain_core.documents import Document

from langchain_ce_rerank import build_reranking_retriever
from langchain_ce_rerank.display import RerankExplanation, explain
from langchain_ce_rerank.display.first_stage import (
    FOUND_BY_NOTE,
    first_stage_kind,
    found_by,
)
from langchain_ce_rerank.display.render import render_text

# The dense side knows these words only, so "E0425" is visible to BM25 alone;
# "the" is a BM25 stopword, so "the logs" is visible to the dense side alone.
WORDS = ["docker", "volume", "backup", "logs", "the"]
TEXTS = ["docker volume backup restore", "the logs", "error E0425 explained"]
QUERY = "docker the E0425"


def _retriever(**kwargs: object) -> Any:
    scores = {"error E0425 explained": 9.0, "the logs": 5.0}
    return build_reranking_retriever(
        [Document(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)],
        embedding=AxisEmbeddings(WORDS),
        reranker=TableCrossEncoder(scores),
        k=3,
        top_n=None,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "140")


def _row_cells(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("│")]
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in lines]


def test_found_by_names_the_side_and_its_rank() -> None:
    sides = {"dense_score": None, "bm25_score": None}
    assert found_by({"retrieval_rank": 1, "retrieval_score": 0.5}) is None
    assert found_by({**sides, "dense_rank": 3, "bm25_rank": None}) == "dense 3"
    assert found_by({**sides, "dense_rank": None, "bm25_rank": 1}) == "bm25 1"
    assert found_by({**sides, "dense_rank": 2, "bm25_rank": 7}) == "both 2/7"
    assert found_by({**sides, "dense_rank": None, "bm25_rank": None}) == ""


def test_the_first_stage_kind_is_read_from_the_scores() -> None:
    dense = {"retrieval_score": 0.9, "dense_score": 0.9, "bm25_score": None}
    bm25 = {"retrieval_score": 2.5, "dense_score": None, "bm25_score": 2.5}
    fused = {"retrieval_score": 0.03, "dense_score": 0.9, "bm25_score": 2.5}
    assert first_stage_kind([{"retrieval_score": 0.9}], "cosine") == "cosine"
    assert first_stage_kind([dense], "cosine") == "cosine"  # bm25's dense fallback
    assert first_stage_kind([bm25, bm25], "cosine") == "BM25"
    assert first_stage_kind([bm25, fused], "cosine") == "hybrid"


def test_explain_shows_which_side_found_each_hybrid_candidate() -> None:
    # Dense ranks "the logs" 1st and the docker text 2nd, and hands on two.
    shown = explain(_retriever(), QUERY, search_type="hybrid", dense_depth=2)
    assert shown.retrieval_kind == "hybrid"
    by_text = {row.document.page_content: row.found_by for row in shown.rows}
    assert by_text == {
        "error E0425 explained": "bm25 1",
        "the logs": "dense 1",
        "docker volume backup restore": "both 2/2",
    }
    text = str(shown)
    assert "found by" in text
    assert FOUND_BY_NOTE in text
    assert "hybrid: first-stage fused score of dense and BM25 search" in text
    first = _row_cells(text)[0]
    assert first[0] == "1"
    assert "bm25 1" in first
    html = shown._repr_html_()
    assert ">found by</th>" in html
    assert ">bm25 1</td>" in html
    assert ">hybrid</th>" in html


def test_explain_after_keyword_search_says_bm25() -> None:
    shown = explain(_retriever(), QUERY, search_type="bm25")
    assert shown.retrieval_kind == "BM25"
    assert [row.found_by for row in shown.rows] == ["bm25 1", "bm25 2"]
    assert "BM25: first-stage BM25 keyword score" in str(shown)


def test_a_dense_first_stage_has_no_found_by_column() -> None:
    shown = explain(_retriever(), QUERY)
    assert shown.retrieval_kind == "cosine"
    assert all(row.found_by is None for row in shown.rows)
    assert "found by" not in str(shown)
    assert "found by" not in shown._repr_html_()


def test_from_documents_reads_the_sides_and_an_explicit_kind_wins() -> None:
    docs = [
        Document(
            page_content="x",
            metadata={
                "retrieval_rank": 1,
                "retrieval_score": 0.03,
                "dense_rank": 2,
                "dense_score": 0.8,
                "bm25_rank": 1,
                "bm25_score": 3.1,
            },
        )
    ]
    shown = RerankExplanation.from_documents("q", docs)
    assert (shown.retrieval_kind, shown.rows[0].found_by) == ("hybrid", "both 2/1")
    named = RerankExplanation.from_documents("q", docs, retrieval_kind="score")
    assert named.retrieval_kind == "score"


@pytest.mark.parametrize("width", [80, 120])
def test_the_found_by_column_stays_whole_in_a_narrow_terminal(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    docs = [
        Document(
            page_content="Docker volumes outlive containers. " * 9,
            metadata={
                "retrieval_rank": 13 - rank,
                "retrieval_score": 0.0312,
                "relevance_score": -10.123,
                "dense_rank": 10 + rank,
                "dense_score": 0.5,
                "bm25_rank": 20 + rank,
                "bm25_score": 7.25,
                "source": "/srv/some/much/deeper/folder/" + f"notes-{rank:02}.md",
            },
        )
        for rank in range(1, 13)
    ]
    text = str(RerankExplanation.from_documents("q", docs))
    rows = _row_cells(text)
    assert len(rows) == 12
    assert all(len(line) <= width for line in text.splitlines())
    for rank, cells in enumerate(rows, start=1):
        assert f"both {10 + rank}/{20 + rank}" in cells


def _query_rows(docs: list[Document]) -> list[dict[str, Any]]:
    keys = ("retrieval_rank", "retrieval_score", "relevance_score")
    sides = ("dense_rank", "dense_score", "bm25_rank", "bm25_score")
    return [
        {"rank": rank, **{k: doc.metadata[k] for k in keys}}
        | {k: doc.metadata.get(k) for k in sides}
        for rank, doc in enumerate(docs, start=1)
    ]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_query_table_shows_each_side_and_who_found_it(width: int) -> None:
    from langchain_ce_rerank.cli.query import _table

    both: dict[str, Any] = {"dense_rank": 2, "dense_score": 0.61, "bm25_rank": 7}
    docs = [
        Document(
            page_content="Tar the volume and copy it to the new host. " * 5,
            metadata={"retrieval_rank": 1, "retrieval_score": 0.032, **both}
            | {"bm25_score": 4.5, "relevance_score": 3.25, "source": "a.md"},
        ),
        Document(
            page_content="E0425 means an unresolved name.",
            metadata={"retrieval_rank": 2, "retrieval_score": 0.016}
            | {"dense_rank": None, "dense_score": None, "bm25_rank": 1}
            | {"bm25_score": 6.0, "relevance_score": 1.5, "source": "b.md"},
        ),
    ]
    table = _table("q", docs, _query_rows(docs), width, "hybrid")
    text = render_text(table, width=width)
    header = next(line for line in text.splitlines() if "move" in line)
    names = [cell.strip() for cell in header.strip("┃").split("┃")]
    assert names[:5] == ["move", "rerank score", "cosine", "bm25", "found by"]
    rows = _row_cells(text)
    assert rows[0][:5] == ["1 -> 1", "3.250", "0.610", "4.500", "both 2/7"]
    assert rows[1][:5] == ["2 -> 2", "1.500", "", "6.000", "bm25 1"]
    assert all(len(line) <= width for line in text.splitlines())


def test_the_query_table_of_keyword_search_leaves_out_an_empty_cosine() -> None:
    from langchain_ce_rerank.cli.query import _table

    doc = Document(
        page_content="E0425",
        metadata={"retrieval_rank": 1, "retrieval_score": 6.0}
        | {"dense_rank": None, "dense_score": None, "bm25_rank": 1}
        | {"bm25_score": 6.0, "relevance_score": 1.5},
    )
    text = render_text(_table("q", [doc], _query_rows([doc]), 120, "bm25"), width=120)
    assert "cosine" not in text
    assert _row_cells(text)[0][:4] == ["1 -> 1", "1.500", "6.000", "bm25 1"]
