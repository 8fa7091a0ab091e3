from __future__ import annotations

from pathlib import Path

import pytest
from doubles import TableCrossEncoder, TruncatingKeywordCrossEncoder
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_ce_rerank import CrossEncoderCompressor
from langchain_ce_rerank.engine.windows import windows, word_spans

FILLER = "lorem ipsum dolor sit amet " * 200  # 1,000 words of nothing relevant
LONG = FILLER + "the needle sentence is here. " + "trailing words " * 20
SHORT = "a short document about something else"
QUERY = "where is needle"


def _docs() -> list[Document]:
    return [
        Document(page_content=SHORT, id="short"),
        Document(page_content="needle once near the start", id="early"),
        Document(page_content=LONG, id="long"),
    ]


def _needle_model() -> TruncatingKeywordCrossEncoder:
    # Two mentions inside the relevant passage outscore the early single one.
    return TruncatingKeywordCrossEncoder(keyword="needle", window=512)


def test_relevant_text_past_the_window_is_found_only_with_max_passage() -> None:
    docs = _docs()
    docs[2] = Document(page_content=LONG.replace("needle", "needle needle"), id="long")
    truncated = CrossEncoderCompressor(
        model=_needle_model(), top_n=None
    ).compress_documents(docs, QUERY)
    assert truncated[0].id == "early"
    assert [d.id for d in truncated if d.id == "long"]
    model = _needle_model()
    passages = CrossEncoderCompressor(
        model=model, top_n=None, long_documents="max_passage", passage_tokens=512
    ).compress_documents(docs, QUERY)
    assert passages[0].id == "long"
    start, end = passages[0].metadata["relevance_passage"]
    assert "needle needle sentence" in docs[2].page_content[start:end]
    # Every window fitted the model's window beside the query.
    assert all(len(QUERY.split()) + len(t.split()) <= 512 for t in model.received)
    assert len(model.received) > 3  # the long document became several windows


def test_all_windows_go_to_the_model_in_one_call() -> None:
    model = TableCrossEncoder()
    CrossEncoderCompressor(
        model=model, long_documents="max_passage", passage_tokens=100
    ).compress_documents(_docs(), QUERY)
    assert len(model.calls) == 1
    assert len(model.calls[0]) > 3


def test_short_documents_get_a_span_covering_all_text() -> None:
    out = CrossEncoderCompressor(
        model=TableCrossEncoder(), long_documents="max_passage", passage_tokens=100
    ).compress_documents([Document(page_content=SHORT)], QUERY)
    assert out[0].metadata["relevance_passage"] == [0, len(SHORT)]


def test_truncate_mode_adds_no_passage() -> None:
    out = CrossEncoderCompressor(model=TableCrossEncoder()).compress_documents(
        [Document(page_content=SHORT)], QUERY
    )
    assert "relevance_passage" not in out[0].metadata


def test_windows_overlap_and_cover_the_text() -> None:
    text = " ".join(f"w{i}" for i in range(25))
    spans = windows(text, word_spans(text), size=10, overlap=3)
    words = [text[a:b].split() for a, b in spans]
    assert words[0] == [f"w{i}" for i in range(10)]
    assert words[1][:3] == words[0][-3:]
    assert words[-1][-1] == "w24"


def test_bad_passage_settings() -> None:
    with pytest.raises(ValidationError, match="needs passage_tokens"):
        CrossEncoderCompressor(model=TableCrossEncoder(), long_documents="max_passage")
    with pytest.raises(ValidationError, match="passage_overlap"):
        CrossEncoderCompressor(passage_tokens=64, passage_overlap=64)
    with pytest.raises(ValueError, match="shorten the query"):
        CrossEncoderCompressor(
            model=TableCrossEncoder(),
            long_documents="max_passage",
            passage_tokens=70,
            passage_overlap=64,
        ).compress_documents(_docs(), "a query of quite a few words here")


def test_max_passage_with_the_real_tokenizer(standin_ce_path: Path) -> None:
    compressor = CrossEncoderCompressor(
        model=standin_ce_path,
        long_documents="max_passage",
        passage_tokens=128,
        top_n=None,
        device="cpu",
    )
    out = compressor.compress_documents(_docs(), QUERY)
    long = next(d for d in out if d.id == "long")
    start, end = long.metadata["relevance_passage"]
    assert 0 <= start < end <= len(LONG)
    assert end - start < len(LONG)
    # The document's score is exactly its best window's score.
    windows_scores = compressor.score(QUERY, [LONG[start:end]])
    assert long.metadata["relevance_score"] == pytest.approx(
        windows_scores[0], abs=1e-5
    )
