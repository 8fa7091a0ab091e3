"""Fitting a calibration on labelled queries (`calibrate`, `calibrate_scores`).

Scores are drawn from known distributions (labels drawn with a known
probability of relevance per score), so what a fit should recover is known.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import matplotlib
import pytest
from doubles import AxisEmbeddings, TableCrossEncoder
from langchain_core.documents import Document

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    FaissVectorStore,
    RerankingRetriever,
    ScoreCalibration,
    build_reranking_retriever,
    calibrate,
)
from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.engine.probability import IsotonicMapping, PlattMapping
from langchain_ce_rerank.evaluation import (
    CalibrationReport,
    calibrate_scores,
    fit_mapping,
)
from langchain_ce_rerank.evaluation.probability_fit import split_queries

matplotlib.use("Agg")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def known_curve(
    n: int, slope: float, intercept: float, seed: int = 0
) -> tuple[list[float], list[int]]:
    """Raw scores uniform in [-4, 4]; relevant with probability sigmoid(a*x + b)."""
    rng = random.Random(seed)
    scores = [rng.uniform(-4, 4) for _ in range(n)]
    labels = [int(rng.random() < _sigmoid(slope * x + intercept)) for x in scores]
    return scores, labels


# -- fit_mapping ----------------------------------------------------------------


def test_platt_recovers_the_curve_the_labels_were_drawn_from() -> None:
    scores, labels = known_curve(6000, slope=2.0, intercept=-1.0)
    mapping = fit_mapping(scores, labels, "platt")
    assert isinstance(mapping, PlattMapping)
    assert mapping.slope == pytest.approx(2.0, abs=0.15)
    assert mapping.intercept == pytest.approx(-1.0, abs=0.15)


def test_isotonic_recovers_a_step() -> None:
    rng = random.Random(3)
    scores = [rng.uniform(-4, 4) for _ in range(6000)]
    labels = [int(rng.random() < (0.9 if x >= 0 else 0.1)) for x in scores]
    mapping = fit_mapping(scores, labels, "isotonic")
    assert isinstance(mapping, IsotonicMapping)
    assert mapping.probability(-2.0) == pytest.approx(0.1, abs=0.05)
    assert mapping.probability(2.0) == pytest.approx(0.9, abs=0.05)
    assert mapping.probability(-100.0) == mapping.probabilities[0]  # clipped


def test_platt_targets_keep_a_separating_score_finite() -> None:
    mapping = fit_mapping([-2.0, -1.0, 1.0, 2.0], [0, 0, 1, 1], "platt")
    assert isinstance(mapping, PlattMapping)
    assert math.isfinite(mapping.slope)
    assert mapping.slope > 0
    # Platt's targets: (1 + 1) / (2 + 2) short of certainty with two of each.
    assert 0.5 < mapping.probability(2.0) < 0.9


@pytest.mark.parametrize(
    ("scores", "labels", "method", "message"),
    [
        ([1.0, 2.0], [0, 0], "platt", "none of the 2 labelled pairs is relevant"),
        ([1.0, 2.0], [1, 1], "isotonic", "is irrelevant"),
        ([1.0, math.nan], [0, 1], "platt", "finite"),
        ([1.0], [0, 1], "platt", "1 scores for 2 labels"),
        ([1.0, 2.0], [0, 1], "spline", "method must be"),
    ],
)
def test_fit_mapping_refuses_what_it_cannot_fit(
    scores: list[float], labels: list[int], method: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_mapping(scores, labels, method)


# -- the split ------------------------------------------------------------------


def test_queries_split_into_disjoint_parts_the_same_for_the_same_seed() -> None:
    ids = [f"q{i}" for i in range(25)]
    fit, report = split_queries(ids, 0.5, seed=1)
    assert sorted(fit + report) == sorted(ids)
    assert not set(fit) & set(report)
    assert len(report) in (12, 13)
    assert split_queries(list(reversed(ids)), 0.5, seed=1) == (fit, report)
    assert split_queries(ids, 0.5, seed=2) != (fit, report)
    assert split_queries(ids, 0.0) == (sorted(ids), sorted(ids))
    assert len(split_queries(ids[:2], 0.9)[0]) == 1  # never an empty part


@pytest.mark.parametrize(
    ("ids", "holdout"), [(["a", "b"], 1.0), (["a", "b"], -0.1), (["a"], 0.5)]
)
def test_a_split_that_cannot_be_made_is_refused(ids: list[str], holdout: float) -> None:
    with pytest.raises(ValueError, match="holdout"):
        split_queries(ids, holdout)


# -- calibrate_scores -----------------------------------------------------------


def _dataset(
    queries: int = 40, per_query: int = 30, slope: float = 2.0, intercept: float = -2.0
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """Scores per query and qrels listing only the relevant docs (as BEIR's do)."""
    rng = random.Random(11)
    scores: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in range(queries):
        qid = f"q{q}"
        scores[qid] = {}
        qrels[qid] = {}
        for d in range(per_query):
            x = rng.uniform(-4, 4)
            scores[qid][f"d{d}"] = x
            if rng.random() < _sigmoid(slope * x + intercept):
                qrels[qid][f"d{d}"] = 1 + (d % 2)
    return scores, qrels


ENGINE = Reranker(model=TableCrossEncoder())


def test_calibrate_scores_fits_on_one_half_and_reports_on_the_other() -> None:
    scores, qrels = _dataset()
    report = calibrate_scores(scores, qrels, engine=ENGINE, holdout=0.5, seed=0)
    assert not report.in_sample
    assert not set(report.fit_queries) & set(report.report_queries)
    assert len(report.fit_queries) + len(report.report_queries) == 40
    fitted = report.calibration.fitted_on
    assert fitted is not None
    assert fitted.queries == len(report.fit_queries)
    assert fitted.pairs == 30 * len(report.fit_queries)  # unjudged count as irrelevant
    assert report.pairs == 30 * len(report.report_queries)
    assert sum(b.count for b in report.reliability) == report.pairs
    mapping = report.calibration.mapping
    assert isinstance(mapping, PlattMapping)
    assert mapping.slope == pytest.approx(2.0, abs=0.4)
    # Well calibrated on held-out queries: each well-filled bin is close.
    for b in report.reliability:
        if b.count >= 60:
            assert b.fraction_relevant == pytest.approx(b.mean_probability, abs=0.12)
    assert report.calibration.fitted_for == ENGINE.scoring_identity()
    assert report.notes == []


def test_calibration_beats_the_sigmoid_of_an_overconfident_score() -> None:
    # True probability sigmoid(x / 4): the raw sigmoid is far too sure.
    scores, qrels = _dataset(slope=0.25, intercept=0.0)
    report = calibrate_scores(scores, qrels, engine=ENGINE)
    assert report.brier["calibrated"] < report.brier["sigmoid of the raw score"] - 0.02
    assert report.brier["calibrated"] < report.brier["base rate"]


def test_the_cuts_compare_min_probability_with_the_raw_threshold_at_its_recall() -> (
    None
):
    scores, qrels = _dataset()
    report = calibrate_scores(scores, qrels, engine=ENGINE, min_probability=0.5)
    calibrated, same_recall, naive = report.cuts
    assert calibrated.name == "min_probability 0.5"
    assert calibrated.precision is not None
    assert calibrated.recall is not None
    # Computed from the reported pairs themselves:
    mapping = report.calibration.mapping
    pairs = [
        (mapping.probability(scores[q][d]), d in qrels[q])
        for q in report.report_queries
        for d in scores[q]
    ]
    kept = [relevant for p, relevant in pairs if p >= 0.5]
    assert calibrated.returned == len(kept)
    assert calibrated.precision == pytest.approx(sum(kept) / len(kept))
    # The raw threshold picked for the same recall reaches it with a
    # monotone calibration: both cut the same ordering.
    assert same_recall.recall == pytest.approx(calibrated.recall)
    assert same_recall.threshold is not None
    assert same_recall.precision == pytest.approx(calibrated.precision, abs=0.05)
    assert naive.name.startswith("sigmoid(raw score) >= 0.5")


def test_empty_queries_are_counted() -> None:
    scores = {f"q{i}": {"a": -3.0, "b": 3.0 if i % 2 else -2.5} for i in range(8)}
    qrels = {f"q{i}": ({"b": 1} if i % 2 else {"a": 1}) for i in range(8)}
    report = calibrate_scores(
        scores, qrels, engine=ENGINE, holdout=0.0, min_probability=0.5
    )
    assert report.in_sample
    # Even queries score both candidates low: nothing clears 0.5 there, and
    # each had a relevant candidate ("a").
    assert report.empty_queries == 4
    assert report.empty_queries_with_relevant == 4


def test_unjudged_candidates_count_as_irrelevant_or_are_skipped() -> None:
    scores = {f"q{i}": {"rel": 2.0, "bad": -2.0, "unjudged": 0.5} for i in range(6)}
    qrels = {f"q{i}": {"rel": 1, "bad": 0} for i in range(6)}
    counted = calibrate_scores(scores, qrels, engine=ENGINE, holdout=0.0)
    skipped = calibrate_scores(
        scores, qrels, engine=ENGINE, holdout=0.0, unjudged="skip"
    )
    assert counted.calibration.fitted_on is not None
    assert skipped.calibration.fitted_on is not None
    assert counted.calibration.fitted_on.pairs == 18
    assert skipped.calibration.fitted_on.pairs == 12
    assert skipped.calibration.fitted_on.unjudged == "skip"
    # The unjudged 0.5-scorers pull the curve down only when they count.
    assert counted.calibration.probability(0.5) < skipped.calibration.probability(0.5)


def test_skip_on_qrels_that_list_only_relevant_documents_says_why_it_cannot_fit() -> (
    None
):
    scores, qrels = _dataset(queries=6)
    with pytest.raises(ValueError, match="grade 0"):
        calibrate_scores(scores, qrels, engine=ENGINE, unjudged="skip")


def test_relevant_grade_sets_what_counts_as_relevant() -> None:
    scores, qrels = _dataset(queries=10)
    one = calibrate_scores(scores, qrels, engine=ENGINE, holdout=0.0)
    two = calibrate_scores(scores, qrels, engine=ENGINE, holdout=0.0, relevant_grade=2)
    assert one.calibration.fitted_on is not None
    assert two.calibration.fitted_on is not None
    assert two.calibration.fitted_on.relevant < one.calibration.fitted_on.relevant


def test_scores_reported_through_a_sigmoid_are_fitted_on_their_logits() -> None:
    scores, qrels = _dataset(queries=10)
    sigmoid = {
        q: {d: _sigmoid(x) for d, x in docs.items()} for q, docs in scores.items()
    }
    on_logits = calibrate_scores(scores, qrels, engine=ENGINE)
    through_sigmoid = calibrate_scores(
        sigmoid, qrels, engine=ENGINE.with_settings(activation="sigmoid")
    )
    a, b = on_logits.calibration.mapping, through_sigmoid.calibration.mapping
    assert isinstance(a, PlattMapping)
    assert isinstance(b, PlattMapping)
    assert b.slope == pytest.approx(a.slope, rel=1e-6)
    assert b.intercept == pytest.approx(a.intercept, rel=1e-6)


def test_a_falling_curve_and_few_labels_are_noted() -> None:
    scores, qrels = _dataset(queries=4, per_query=10, slope=-2.0, intercept=-1.0)
    report = calibrate_scores(scores, qrels, engine=ENGINE)
    text = " ".join(report.notes)
    assert "LESS often relevant" in text
    assert "few labels" in text
    assert "LESS often relevant" in str(report)


def test_no_labelled_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query has both"):
        calibrate_scores({"q1": {"a": 1.0}}, {"q2": {"a": 1}}, engine=ENGINE)


# -- the report -----------------------------------------------------------------


def test_the_report_shows_tables_plots_and_turns_into_json(tmp_path: Path) -> None:
    scores, qrels = _dataset(queries=10)
    report = calibrate_scores(scores, qrels, engine=ENGINE, method="isotonic")
    text = str(report)
    for part in ("isotonic calibration", "Brier", "Reliability", "min_probability 0.5"):
        assert part in text
    html = report._repr_html_()
    assert "<table" in html
    assert "fraction relevant" in html
    data = json.loads(json.dumps(report.to_dict()))
    assert data["calibration"]["mapping"]["kind"] == "isotonic"
    assert data["cuts"][0]["name"] == "min_probability 0.5"
    ax = report.plot()
    assert ax.get_xlabel() == "relevance_probability (bin mean)"
    assert len(ax.lines) == 2  # the diagonal and the bins


def test_the_report_saves_a_calibration_a_door_accepts(tmp_path: Path) -> None:
    scores, qrels = _dataset(queries=10)
    report = calibrate_scores(scores, qrels, engine=ENGINE)
    path = tmp_path / "c.json"
    report.save(str(path))
    door = CrossEncoderCompressor(model=TableCrossEncoder(), calibration=str(path))
    assert door.calibration == report.calibration
    assert isinstance(ScoreCalibration.load(path).mapping, PlattMapping)


# -- calibrate(pipeline, ...) ---------------------------------------------------


def _pipeline() -> RerankingRetriever:
    words = [f"w{i}" for i in range(12)]
    docs = [Document(page_content=w, id=w) for w in words]
    store = FaissVectorStore(AxisEmbeddings(words))
    store.add_documents(docs)
    table = {w: float(i) - 6.0 for i, w in enumerate(words)}
    reranker = CrossEncoderCompressor(model=TableCrossEncoder(table), top_n=3)
    return build_reranking_retriever(
        first_stage=store.as_retriever(k=12), reranker=reranker
    )


def test_calibrate_scores_a_pipeline_once_and_ties_the_calibration_to_its_reranker() -> (
    None
):
    pipeline = _pipeline()
    queries = {f"q{i}": f"w{i}" for i in range(12)}
    # w9..w11 (the highest scores) are relevant, and w0 (the lowest) for q0 only.
    qrels = {q: {"w9": 1, "w10": 1, "w11": 1} for q in queries}
    qrels["q0"]["w0"] = 1
    report = calibrate(pipeline, queries, qrels, holdout=0.25, source="toy")
    assert isinstance(report, CalibrationReport)
    assert report.calibration.fitted_on is not None
    assert report.calibration.fitted_on.source == "toy"
    assert report.calibration.fitted_on.pairs == 12 * len(report.fit_queries)
    assert len(report.report_queries) == 3
    assert (
        report.calibration.probability(5.0) > 0.5 > report.calibration.probability(-5.0)
    )
    assert report.calibration.fitted_for.model == "doubles.TableCrossEncoder"


def test_calibrate_needs_a_reranking_pipeline() -> None:
    store = FaissVectorStore(AxisEmbeddings(["a"]))
    store.add_documents([Document(page_content="a", id="a")])
    with pytest.raises(TypeError, match="CrossEncoderCompressor"):
        calibrate(store.as_retriever(k=1), {"q": "a"}, {"q": {"a": 1}})
