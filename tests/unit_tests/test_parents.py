"""`parents=` with the other cuts: diversity and min_probability see the parents.

With `parents=` the candidates the cuts work on are the parents the chunks
collapsed into, not the chunks: diversity compares the parents' texts, and a
calibrated probability is that of the parent's score (its best window). A table
double scores each parent text (every parent fits one window), so every order
is known in advance. The CLI's `--parents` with these flags is in
test_cli_query_parents.py.
"""

from __future__ import annotations

import logging
import math

import pytest
from doubles import TableCrossEncoder
from langchain_core.documents import Document

from langchain_ce_rerank import CrossEncoderCompressor, ScoreCalibration
from langchain_ce_rerank.engine import ScoringIdentity
from langchain_ce_rerank.engine.probability import PlattMapping

# a.md and b.md are near-copies as whole files (5 of their 6 words shared);
# c.md shares no word with either. Their chunks share no word with each other.
PARENTS = {
    "a.md": "docker volume backup restore guide",
    "b.md": "docker volume backup restore guide copy",
    "c.md": "kubernetes pod logs",
}
CHUNKS = [  # (chunk text, its file), in first-stage order
    ("docker volume", "a.md"),
    ("guide copy", "b.md"),
    ("backup restore", "a.md"),
    ("pod logs", "c.md"),
]
SCORES = {PARENTS["a.md"]: 3.0, PARENTS["b.md"]: 1.0, PARENTS["c.md"]: -1.0}
# The parents' probabilities under Platt(1, 0): a 0.953, b 0.731, c 0.269.

WINDOWS = {"passage_tokens": 8, "passage_overlap": 1}
CALIBRATION = ScoreCalibration(
    mapping=PlattMapping(slope=1.0, intercept=0.0),
    fitted_for=ScoringIdentity(
        model="doubles.TableCrossEncoder",
        long_documents="max_passage",
        passage_tokens=8,
        passage_overlap=1,
    ),
)


def _chunks(*, vectors: bool = False) -> list[Document]:
    docs = []
    for rank, (text, parent) in enumerate(CHUNKS, start=1):
        metadata: dict[str, object] = {
            "source": parent,
            "doc_id": parent,
            "retrieval_rank": rank,
            "start_index": PARENTS[parent].index(text),
        }
        if vectors:
            # Every chunk orthogonal to the others: by the chunks' own
            # vectors, nothing would be redundant.
            metadata["retrieval_embedding"] = [float(i == rank) for i in range(1, 5)]
        docs.append(Document(page_content=text, id=text, metadata=metadata))
    return docs


def _parents() -> dict[str, Document]:
    return {key: Document(page_content=text, id=key) for key, text in PARENTS.items()}


def _compressor(**settings: object) -> CrossEncoderCompressor:
    return CrossEncoderCompressor(
        model=TableCrossEncoder(SCORES), parents=_parents(), **WINDOWS, **settings
    )


# -- diversity --------------------------------------------------------------------


def test_without_diversity_the_two_near_copies_fill_top_n() -> None:
    kept = _compressor(top_n=2).compress_documents(_chunks(), "q")
    assert [d.id for d in kept] == ["a.md", "b.md"]


@pytest.mark.parametrize("vectors", [False, True])
def test_diversity_compares_the_parents_texts_not_the_chunks(vectors: bool) -> None:
    # By the chunks (texts or vectors) b.md is nothing like a.md; as whole
    # files it is a near-copy, and diversity gives its slot to c.md. The
    # chunks' vectors are not the parents' and are not used for them: the
    # parents are compared by the word-set fallback.
    compressor = _compressor(top_n=2)
    kept, dropped = compressor.compress_documents_explained(
        _chunks(vectors=vectors), "q", diversity=0.5
    )
    assert [d.id for d in kept] == ["a.md", "c.md"]
    assert kept[0].page_content == PARENTS["a.md"]
    assert kept[1].metadata["parent_chunks"] == ["pod logs"]
    assert kept[0].metadata["parent_chunks"] == ["docker volume", "backup restore"]
    assert all("retrieval_embedding" not in d.metadata for d in kept)
    assert [(d.id, d.metadata["drop_reason"]) for d in dropped] == [
        ("b.md", "diversity")
    ]
    # The setting, not only the per-call option.
    assert [
        d.id
        for d in _compressor(top_n=2, diversity=0.5).compress_documents(_chunks(), "q")
    ] == ["a.md", "c.md"]


# -- min_probability --------------------------------------------------------------


def test_each_parent_carries_the_probability_of_its_score_and_the_cut_drops_parents() -> (
    None
):
    compressor = _compressor(top_n=None, calibration=CALIBRATION)
    kept = compressor.compress_documents(_chunks(), "q")
    assert [d.id for d in kept] == ["a.md", "b.md", "c.md"]
    assert [d.metadata["relevance_probability"] for d in kept] == pytest.approx(
        [1 / (1 + math.exp(-s)) for s in (3.0, 1.0, -1.0)]
    )
    kept, dropped = compressor.compress_documents_explained(
        _chunks(), "q", min_probability=0.5
    )
    assert [d.id for d in kept] == ["a.md", "b.md"]
    assert [d.page_content for d in kept] == [PARENTS["a.md"], PARENTS["b.md"]]
    assert kept[1].metadata["best_chunk_span"] == [
        PARENTS["b.md"].index("guide copy"),
        len(PARENTS["b.md"]),
    ]
    assert [(d.id, d.metadata["drop_reason"]) for d in dropped] == [
        ("c.md", "min_probability")
    ]
    assert dropped[0].metadata["parent_chunks"] == ["pod logs"]


def test_when_no_parent_clears_min_probability_the_result_is_empty_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    compressor = _compressor(calibration=CALIBRATION, min_probability=0.99)
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank"):
        assert compressor.compress_documents(_chunks(), "q") == []
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "min_probability" in said
    assert "0.99" in said


def test_a_calibration_fitted_on_the_chunks_is_refused_for_the_parents() -> None:
    # parents= scores whole files as their best window: a calibration fitted
    # on truncated chunks maps another score, and is refused saying so.
    on_chunks = ScoreCalibration(
        mapping=PlattMapping(slope=1.0, intercept=0.0),
        fitted_for=ScoringIdentity(model="doubles.TableCrossEncoder"),
    )
    with pytest.raises(ValueError, match="long_documents"):
        _compressor(calibration=on_chunks)


def test_diversity_and_min_probability_together_on_parents() -> None:
    # Diversity picks a.md then c.md for top_n=2; the probability cut then
    # drops c.md (0.269): b.md does not come back, diversity had pushed it out.
    kept, dropped = _compressor(
        top_n=2, calibration=CALIBRATION
    ).compress_documents_explained(_chunks(), "q", diversity=0.5, min_probability=0.5)
    assert [d.id for d in kept] == ["a.md"]
    assert sorted((d.id, d.metadata["drop_reason"]) for d in dropped) == [
        ("b.md", "diversity"),
        ("c.md", "min_probability"),
    ]
