from __future__ import annotations

import pytest
from doubles import TableCrossEncoder
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_ce_rerank import CrossEncoderCompressor

# First stage order a, b, c, d; the cross-encoder prefers d, c, b, a.
TABLE = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}


def _docs(with_ranks: bool = True) -> list[Document]:
    return [
        Document(
            page_content=t,
            id=t,
            metadata={"retrieval_rank": i + 1} if with_ranks else {},
        )
        for i, t in enumerate("abcd")
    ]


def test_rrf_scores_and_order() -> None:
    out = CrossEncoderCompressor(
        model=TableCrossEncoder({"a": 4.0, "b": 1.0, "c": 3.0, "d": 2.0}),
        fusion="rrf",
        top_n=None,
    ).compress_documents(_docs(), "q")
    # CE ranks: a1 c2 d3 b4; first stage: a1 b2 c3 d4.
    expected = {
        "a": 1 / 61 + 1 / 61,
        "b": 1 / 64 + 1 / 62,
        "c": 1 / 62 + 1 / 63,
        "d": 1 / 63 + 1 / 64,
    }
    assert [d.id for d in out] == ["a", "c", "b", "d"]
    for doc in out:
        assert doc.metadata["fused_score"] == pytest.approx(expected[doc.id])
        assert (
            doc.metadata["relevance_score"]
            == {"a": 4.0, "b": 1.0, "c": 3.0, "d": 2.0}[doc.id]
        )


def test_rrf_ties_go_to_the_cross_encoders_choice() -> None:
    out = CrossEncoderCompressor(
        model=TableCrossEncoder(TABLE), fusion="rrf", top_n=None
    ).compress_documents(_docs(), "q")
    # Fully reversed orders: a/d tie and b/c tie; the CE preferred d and c.
    assert [d.id for d in out] == ["d", "a", "c", "b"]


def test_rrf_uses_retrieval_rank_not_input_order() -> None:
    docs = _docs()
    shuffled = [docs[3], docs[2], docs[1], docs[0]]  # ranks still say a, b, c, d
    out = CrossEncoderCompressor(
        model=TableCrossEncoder({"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.0}),
        fusion="rrf",
        top_n=2,
    ).compress_documents(shuffled, "q")
    # CE ranks c1 d2 b3 a4. With retrieval_rank a is second; had the input
    # order been taken as the first stage, d would be.
    assert [d.id for d in out] == ["c", "a"]


def test_rrf_without_ranks_uses_input_order() -> None:
    out = CrossEncoderCompressor(
        model=TableCrossEncoder({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}),
        fusion="rrf",
        top_n=1,
        rrf_k=1,
    ).compress_documents(list(reversed(_docs(with_ranks=False))), "q")
    assert out[0].id == "d"


def test_rrf_keeps_top_n_and_threshold_on_relevance_score() -> None:
    out = CrossEncoderCompressor(
        model=TableCrossEncoder({"a": 4.0, "b": 1.0, "c": 3.0, "d": 2.0}),
        fusion="rrf",
        top_n=3,
        score_threshold=2.5,
    ).compress_documents(_docs(), "q")
    assert [d.id for d in out] == ["a", "c"]  # b (1.0) is cut by the threshold


def test_without_fusion_there_is_no_fused_score() -> None:
    out = CrossEncoderCompressor(model=TableCrossEncoder(TABLE)).compress_documents(
        _docs(), "q"
    )
    assert all("fused_score" not in d.metadata for d in out)


def test_content_template_puts_metadata_into_the_scored_text() -> None:
    model = TableCrossEncoder({"Backups\nbody": 5.0})
    docs = [
        Document(page_content="body", id="x", metadata={"title": "Backups"}),
        Document(page_content="body", id="y", metadata={"title": "Logs"}),
    ]
    out = CrossEncoderCompressor(
        model=model, content_template="{title}\n{page_content}"
    ).compress_documents(docs, "q")
    assert [d.id for d in out] == ["x", "y"]
    assert out[0].page_content == "body"  # the document itself is unchanged
    assert sorted(model.calls[0]) == [("q", "Backups\nbody"), ("q", "Logs\nbody")]


def test_content_template_missing_field_names_it_and_the_document() -> None:
    docs = [Document(page_content="body", id="doc-42", metadata={})]
    compressor = CrossEncoderCompressor(
        model=TableCrossEncoder(), content_template="{title}: {page_content}"
    )
    with pytest.raises(ValueError, match=r"'title'.*'doc-42'"):
        compressor.compress_documents(docs, "q")


def test_malformed_template_fails_at_construction() -> None:
    with pytest.raises(ValidationError, match="malformed"):
        CrossEncoderCompressor(content_template="{title")
    with pytest.raises(ValidationError, match="no \\{field\\}"):
        CrossEncoderCompressor(content_template="constant text")
