"""The explanation says why each candidate is not returned, next to the movement
table: for every cut (group full, diversity, score threshold, probability,
token budget), and "not scored" where a deadline left a candidate unscored.

Scores come from a table double (and, for the deadline, a slow double on a
fake clock), so every cut is known in advance; text and HTML are both checked.
"""

from __future__ import annotations

import pytest
from doubles import FakeClock, SlowCrossEncoder, TableCrossEncoder
from langchain_core.documents import Document

from langchain_ce_rerank import CrossEncoderCompressor, Reranker, ScoreCalibration
from langchain_ce_rerank.display import RerankExplanation
from langchain_ce_rerank.engine import DROP_REASONS, ScoringIdentity
from langchain_ce_rerank.engine.probability import PlattMapping

CANDIDATES = [  # (text, source, raw score), in first-stage order
    ("red apple pie", "a.md", 3.0),
    ("Red apple pie!", "b.md", 2.9),
    ("green pear tart", "c.md", 1.0),
    ("red apple crumble", "a.md", 0.5),
    ("blue plum jam", "d.md", -2.0),
]
CALIBRATION = ScoreCalibration(
    mapping=PlattMapping(slope=1.0, intercept=0.0),
    fitted_for=ScoringIdentity(model="doubles.TableCrossEncoder"),
)


def _docs() -> list[Document]:
    return [
        Document(
            page_content=text,
            id=f"d{rank}",
            metadata={"source": source, "retrieval_rank": rank},
        )
        for rank, (text, source, _) in enumerate(CANDIDATES, start=1)
    ]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"group_by": "source"}, {"d4": "group_full"}),
        (
            {"top_n": 2, "diversity": 0.5},
            {"d2": "diversity", "d4": "top_n", "d5": "top_n"},
        ),
        (
            {"score_threshold": 2.0},
            {"d3": "score_threshold", "d4": "score_threshold", "d5": "score_threshold"},
        ),
        (
            {"min_probability": 0.8},
            {"d3": "min_probability", "d4": "min_probability", "d5": "min_probability"},
        ),
        (
            {"max_context_tokens": 6},
            {"d3": "context_budget", "d4": "context_budget", "d5": "context_budget"},
        ),
    ],
)
def test_each_cut_is_named_in_words_beside_the_movement_table(
    options: dict[str, object], expected: dict[str, str]
) -> None:
    compressor = CrossEncoderCompressor(
        model=TableCrossEncoder({text: score for text, _, score in CANDIDATES}),
        top_n=None,
        calibration=CALIBRATION,
        token_counter=lambda text: len(text.split()),
    )
    kept, dropped = compressor.compress_documents_explained(
        _docs(), "apple pie", **options
    )
    shown = RerankExplanation.from_documents("apple pie", kept, dropped=dropped)
    assert {row.document.id: row.reason for row in shown.dropped} == expected
    text, html = _flat(str(shown)), shown._repr_html_()
    assert "move" in text
    assert f"Not returned ({len(expected)})" in text
    assert f"Not returned ({len(expected)})" in html
    for reason in set(expected.values()):
        assert DROP_REASONS[reason] in text
        assert DROP_REASONS[reason] in html
    assert "not scored" not in text


def _slow_compressor() -> CrossEncoderCompressor:
    # 10 ms a pair, two pairs a batch: a 50 ms budget scores the first four
    # candidates (two batches), and the next batch would end at 60 ms.
    clock = FakeClock()
    texts = [f"t{i}" + "-" * i for i in range(5)] + [f"t{i}" for i in range(5, 10)]
    engine = Reranker(
        model=SlowCrossEncoder(clock, 0.010, {t: float(len(t)) for t in texts}),
        clock=clock,
        batch_size=2,
        top_n=None,
    )
    return CrossEncoderCompressor(model=engine, top_n=6, deadline_ms=50)


def test_what_a_deadline_left_unscored_says_not_scored_in_both_tables() -> None:
    texts = [f"t{i}" + "-" * i for i in range(5)] + [f"t{i}" for i in range(5, 10)]
    docs = [
        Document(page_content=t, id=f"d{i}", metadata={"retrieval_rank": i + 1})
        for i, t in enumerate(texts)
    ]
    kept, dropped = _slow_compressor().compress_documents_explained(docs, "q")
    shown = RerankExplanation.from_documents("q", kept, dropped=dropped)
    assert [row.scored for row in shown.rows] == [True] * 4 + [False] * 2
    assert [(row.reason, row.scored) for row in shown.dropped] == [("top_n", False)] * 4
    lines = str(shown).splitlines()
    unscored_rows = [
        line for line in lines if line.startswith("│") and "not scored" in line
    ]
    # Two kept rows and four dropped ones; the scored rows show their scores.
    assert len(unscored_rows) == 6
    assert any("t0" in line and "2.000" in line for line in lines)
    assert "deadline_ms ran out" in _flat(str(shown))
    html = shown._repr_html_()
    assert html.count(">not scored</td>") == 6
    assert "deadline_ms ran out" in html


def test_a_call_without_unscored_candidates_has_no_deadline_note() -> None:
    docs = [Document(page_content="t0", metadata={"relevance_score": 1.0})]
    shown = RerankExplanation.from_documents("q", docs)
    assert "deadline_ms" not in str(shown)
    assert "not scored" not in shown._repr_html_()
