"""Fitting a `ScoreCalibration` on labelled queries, and how well it fits.

`calibrate(pipeline, queries, qrels)` (and `ce-rerank eval --calibrate FILE`)
scores every judged query's candidates once, splits the queries in two (fit
on one part, report on the other, so the report measures what a new query
would see), fits the mapping from raw score to probability of relevance with
scikit-learn, and reports on the held-out queries: a reliability table, the
Brier score against two baselines, and what `min_probability` returns
compared with a raw `score_threshold` at the same recall.

Labels come from qrels: a candidate is relevant when its grade is at least
`relevant_grade` (1). A candidate the qrels do not judge counts as
irrelevant by default (`unjudged="irrelevant"`, the TREC and BEIR
convention, and the only workable one for qrels that list only the relevant
documents, as BEIR's do); `unjudged="skip"` fits on judged candidates only,
for qrels that also judge documents irrelevant (grade 0).
"""

from __future__ import annotations

import logging
import math
import random
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.engine.checks import check_min_probability
from langchain_ce_rerank.engine.probability import (
    FitSummary,
    IsotonicMapping,
    PlattMapping,
    ScoreCalibration,
    raw_score,
)
from langchain_ce_rerank.evaluation.datasets import Qrels
from langchain_ce_rerank.evaluation.probability_report import (
    CalibrationReport,
    brier_score,
    reliability_bins,
    same_recall_threshold,
    threshold_cut,
)

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever

__all__ = [
    "calibrate",
    "calibrate_scores",
    "fit_mapping",
    "split_queries",
]

logger = logging.getLogger(__name__)

Method = Literal["platt", "isotonic"]
Unjudged = Literal["irrelevant", "skip"]

_FEW_LABELS = 10
"""Below this many relevant (or irrelevant) pairs, the report says the fit is rough."""


def fit_mapping(
    raw_scores: Sequence[float], labels: Sequence[int], method: Method = "platt"
) -> PlattMapping | IsotonicMapping:
    """Fit the curve from raw score to probability of relevance.

    `"platt"`: logistic regression on the raw score (scikit-learn's
    `LogisticRegression`, effectively unregularized) against Platt's (1999)
    smoothed targets, `(N+ + 1) / (N+ + 2)` for relevant and `1 / (N- + 2)`
    for irrelevant pairs, so a perfectly separating score still gets a finite
    slope. `"isotonic"`: scikit-learn's `IsotonicRegression` (direction chosen
    by the data, clipped beyond the fitted range).

    Args:
        raw_scores: The model's raw score (before activation) per pair.
        labels: 1 for a relevant pair, 0 for an irrelevant one.
        method: `"platt"` or `"isotonic"`.

    Returns:
        The fitted mapping, applied with plain Python.

    Raises:
        ValueError: Mismatched lengths, a non-finite score, an unknown
            method, or labels of one class only (nothing to fit).
    """
    if len(raw_scores) != len(labels):
        msg = f"got {len(raw_scores)} scores for {len(labels)} labels"
        raise ValueError(msg)
    if not all(math.isfinite(s) for s in raw_scores):
        msg = "every raw score must be finite to fit a calibration (a NaN or inf)"
        raise ValueError(msg)
    positives = sum(1 for label in labels if label)
    if positives in (0, len(labels)):
        kind = "relevant" if positives == 0 else "irrelevant"
        msg = (
            f"cannot fit a calibration: none of the {len(labels)} labelled pairs "
            f"is {kind}; it needs both relevant and irrelevant candidates"
        )
        raise ValueError(msg)
    import numpy as np

    x = np.asarray(raw_scores, dtype=np.float64)
    y = np.asarray([1 if label else 0 for label in labels], dtype=np.int64)
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        negatives = len(y) - positives
        targets = np.where(
            y == 1, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0)
        )
        # Soft targets as two weighted copies of each pair (one per class).
        features = np.concatenate([x, x]).reshape(-1, 1)
        classes = np.concatenate([np.ones_like(y), np.zeros_like(y)])
        weights = np.concatenate([targets, 1.0 - targets])
        model = LogisticRegression(C=1e8, max_iter=1000)
        model.fit(features, classes, sample_weight=weights)
        return PlattMapping(
            slope=float(model.coef_[0][0]), intercept=float(model.intercept_[0])
        )
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        regression = IsotonicRegression(
            y_min=0.0, y_max=1.0, increasing="auto", out_of_bounds="clip"
        )
        with warnings.catch_warnings():
            # "auto" warns when the direction is uncertain; the report says
            # so itself, in words about the reranker (see `calibrate_scores`).
            warnings.simplefilter("ignore", UserWarning)
            regression.fit(x, y.astype(np.float64))
        return IsotonicMapping(
            scores=tuple(float(v) for v in regression.X_thresholds_),
            probabilities=tuple(
                min(1.0, max(0.0, float(v))) for v in regression.y_thresholds_
            ),
        )
    msg = f"method must be 'platt' or 'isotonic', got {method!r}"
    raise ValueError(msg)


def split_queries(
    query_ids: Sequence[str], holdout: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split query ids into (fit, report) parts, the same for the same seed.

    Args:
        query_ids: The labelled queries.
        holdout: The share held out for the report, in [0, 1); 0 fits and
            reports on every query (in-sample numbers are optimistic).
        seed: Seed of the shuffle.

    Returns:
        The fit ids and the report ids, each sorted; with `holdout=0` both
        are every id.

    Raises:
        ValueError: `holdout` outside [0, 1), or fewer than 2 queries to split.
    """
    if not 0.0 <= holdout < 1.0:
        msg = f"holdout must be from 0 (no held-out queries) to below 1, got {holdout}"
        raise ValueError(msg)
    ordered = sorted(set(query_ids))
    if holdout == 0.0:
        return ordered, list(ordered)
    if len(ordered) < 2:
        msg = (
            f"holding out queries needs at least 2 labelled queries, got "
            f"{len(ordered)}; use holdout=0 to fit and report on the same ones"
        )
        raise ValueError(msg)
    random.Random(seed).shuffle(ordered)
    held = min(max(round(len(ordered) * holdout), 1), len(ordered) - 1)
    return sorted(ordered[held:]), sorted(ordered[:held])


@dataclass
class _Pairs:
    """Labelled (query, candidate) pairs: reported score, raw score, label."""

    queries: list[str] = field(default_factory=list)
    reported: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


def _pairs(
    scores: Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    query_ids: Sequence[str],
    *,
    activation: str,
    unjudged: Unjudged,
    relevant_grade: int,
) -> _Pairs:
    pairs = _Pairs()
    for qid in query_ids:
        judged = qrels.get(qid, {})
        for doc_id, score in scores[qid].items():
            grade = judged.get(doc_id)
            if grade is None and unjudged == "skip":
                continue
            pairs.queries.append(qid)
            pairs.reported.append(score)
            pairs.raw.append(raw_score(score, activation))
            pairs.labels.append(int(grade is not None and grade >= relevant_grade))
    return pairs


def calibrate_scores(
    scores: Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    *,
    engine: Reranker,
    method: Method = "platt",
    holdout: float = 0.5,
    seed: int = 0,
    unjudged: Unjudged = "irrelevant",
    relevant_grade: int = 1,
    min_probability: float = 0.5,
    source: str | None = None,
) -> CalibrationReport:
    """Fit a calibration on scores already computed, and report on held-out queries.

    Args:
        scores: Per query id, each candidate's score as `engine` reports it
            (`EvaluationReport.reranker_scores`).
        qrels: {query id: {doc id: grade}}.
        engine: The reranker that computed them: the calibration is tied to
            it (`Reranker.scoring_identity`) and its `activation` is undone
            to fit on raw scores.
        method: `"platt"` (logistic, the default) or `"isotonic"`.
        holdout: Share of queries held out for the report (0: none).
        seed: Seed of the query split.
        unjudged: `"irrelevant"`: a candidate the qrels do not judge counts
            as irrelevant; `"skip"`: it is left out.
        relevant_grade: The lowest grade counted as relevant.
        min_probability: The probability the report's cuts are measured at.
        source: What the labels are, for the file's record.

    Returns:
        The `CalibrationReport`.

    Raises:
        ValueError: No query has both scores and judgements, too few queries
            to hold some out, or a fit part without relevant or without
            irrelevant candidates.
    """
    check_min_probability(min_probability)
    labelled = [qid for qid in scores if qid in qrels and scores[qid]]
    if not labelled:
        msg = "no query has both reranker scores and relevance judgements"
        raise ValueError(msg)
    fit_ids, report_ids = split_queries(labelled, holdout, seed)
    options: dict[str, Any] = {
        "activation": engine.activation,
        "unjudged": unjudged,
        "relevant_grade": relevant_grade,
    }
    fit = _pairs(scores, qrels, fit_ids, **options)
    try:
        mapping = fit_mapping(fit.raw, fit.labels, method)
    except ValueError as err:
        hint = (
            " (with unjudged='skip' only judged candidates count: do the qrels "
            "judge any document irrelevant, with grade 0?)"
            if unjudged == "skip"
            else ""
        )
        msg = f"{err}, among the candidates of the {len(fit_ids)} fit queries{hint}"
        raise ValueError(msg) from None
    calibration = ScoreCalibration(
        mapping=mapping,
        fitted_for=engine.scoring_identity(),
        fitted_on=FitSummary(
            queries=len(fit_ids),
            pairs=len(fit.labels),
            relevant=sum(fit.labels),
            unjudged=unjudged,
            relevant_grade=relevant_grade,
            source=source,
        ),
    )
    shown = _pairs(scores, qrels, report_ids, **options)
    probabilities = [mapping.probability(x) for x in shown.raw]
    base_rate = sum(fit.labels) / len(fit.labels)
    brier = {
        "calibrated": brier_score(shown.labels, probabilities),
        "sigmoid of the raw score": brier_score(
            shown.labels, [_raw_sigmoid(x) for x in shown.raw]
        ),
        "base rate": brier_score(shown.labels, [base_rate] * len(shown.labels)),
    }
    calibrated = threshold_cut(
        f"min_probability {min_probability:g}",
        min_probability,
        [p >= min_probability for p in probabilities],
        shown.labels,
    )
    same = same_recall_threshold(shown.reported, shown.labels, calibrated.recall or 0)
    cuts = [
        calibrated,
        threshold_cut(
            "score_threshold at the same recall (picked on these labels)",
            same,
            [same is not None and s >= same for s in shown.reported],
            shown.labels,
        ),
        threshold_cut(
            f"sigmoid(raw score) >= {min_probability:g} (uncalibrated)",
            min_probability,
            [_raw_sigmoid(x) >= min_probability for x in shown.raw],
            shown.labels,
        ),
    ]
    empty, empty_relevant = _empty_queries(shown, probabilities, min_probability)
    report = CalibrationReport(
        calibration=calibration,
        fit_queries=fit_ids,
        report_queries=report_ids,
        in_sample=holdout == 0.0,
        reliability=reliability_bins(probabilities, shown.labels),
        brier=brier,
        cuts=cuts,
        min_probability=min_probability,
        pairs=len(shown.labels),
        relevant=sum(shown.labels),
        empty_queries=empty,
        empty_queries_with_relevant=empty_relevant,
        notes=_notes(mapping, fit, shown),
    )
    for note in report.notes:
        logger.info("Calibration: %s", note)
    return report


def _raw_sigmoid(raw: float) -> float:
    """`sigmoid(raw)`, what `activation="sigmoid"` reports for a raw score."""
    return PlattMapping(slope=1.0, intercept=0.0).probability(raw)


def _empty_queries(
    shown: _Pairs, probabilities: list[float], min_probability: float
) -> tuple[int, int]:
    """Queries that min_probability empties, and those of them with a relevant one."""
    cleared: dict[str, bool] = {}
    relevant: dict[str, bool] = {}
    for qid, p, label in zip(shown.queries, probabilities, shown.labels, strict=True):
        cleared[qid] = cleared.get(qid, False) or p >= min_probability
        relevant[qid] = relevant.get(qid, False) or bool(label)
    empty = [qid for qid, ok in cleared.items() if not ok]
    return len(empty), sum(1 for qid in empty if relevant[qid])


def _notes(
    mapping: PlattMapping | IsotonicMapping, fit: _Pairs, shown: _Pairs
) -> list[str]:
    notes = []
    decreasing = (
        mapping.slope < 0
        if isinstance(mapping, PlattMapping)
        else mapping.probabilities[-1] < mapping.probabilities[0]
    )
    if decreasing:
        notes.append(
            "the fitted curve falls: higher scores were LESS often relevant on "
            "these labels, so the reranker orders these documents worse than "
            "chance (an untrained model, or labels for another task?)"
        )
    relevant = sum(fit.labels)
    if min(relevant, len(fit.labels) - relevant) < _FEW_LABELS:
        notes.append(
            f"fitted on few labels ({relevant} relevant and "
            f"{len(fit.labels) - relevant} irrelevant pairs): the probabilities "
            "are rough; label more queries for a steadier fit"
        )
    if not sum(shown.labels):
        notes.append("the reported queries have no relevant candidate")
    return notes


def calibrate(
    pipeline: BaseRetriever,
    queries: Mapping[str, str],
    qrels: Qrels,
    *,
    method: Method = "platt",
    holdout: float = 0.5,
    seed: int = 0,
    unjudged: Unjudged = "irrelevant",
    relevant_grade: int = 1,
    min_probability: float = 0.5,
    source: str | None = None,
) -> CalibrationReport:
    """Fit a probability calibration for a reranking pipeline on labelled queries.

    Runs the first stage and scores every judged query's candidates once
    (as `evaluate` does), then `calibrate_scores`: fit on part of the
    queries, report on the rest. Save the result with `report.save(path)`
    and pass it to a door as `calibration=`.

    Args:
        pipeline: A first stage plus `CrossEncoderCompressor`, as
            `build_reranking_retriever` makes; the calibration is tied to its
            reranker.
        queries: {query id: text}.
        qrels: {query id: {doc id: grade}}; doc ids match each document's
            `metadata["doc_id"]`, else its `id`.
        method: `"platt"` (the default) or `"isotonic"`.
        holdout: Share of queries held out for the report (0: none).
        seed: Seed of the query split.
        unjudged: How a candidate the qrels do not judge counts:
            `"irrelevant"` (the default) or `"skip"`.
        relevant_grade: The lowest grade counted as relevant.
        min_probability: The probability the report's cuts are measured at.
        source: What the labels are, for the file's record.

    Returns:
        The `CalibrationReport` (its `calibration` is the fitted mapping).

    Raises:
        TypeError: `pipeline` has no `CrossEncoderCompressor` to calibrate.
        ValueError: See `calibrate_scores`.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import (
            CrossEncoderCompressor,
            FaissVectorStore,
            build_reranking_retriever,
            calibrate,
        )


        class Overlap:  # any scorer works; a cross-encoder in practice
            def score(self, pairs):
                return [float(len(set(q.split()) & set(t.split()))) for q, t in pairs]


        texts = ["red apple", "green apple", "red car", "blue sky"] * 3
        store = FaissVectorStore.from_texts(
            texts, DeterministicFakeEmbedding(size=8), ids=[str(i) for i in range(12)]
        )
        reranker = CrossEncoderCompressor(model=Overlap(), top_n=None)
        pipeline = build_reranking_retriever(
            first_stage=store.as_retriever(k=12), reranker=reranker
        )
        queries = {"q1": "red apple", "q2": "apple", "q3": "red", "q4": "sky"}
        qrels = {
            "q1": {"0": 1, "4": 1, "8": 1},
            "q2": {"0": 1, "1": 1, "4": 1, "5": 1},
            "q3": {"0": 1, "2": 1, "6": 1},
            "q4": {"3": 1, "7": 1, "11": 1},
        }
        report = calibrate(pipeline, queries, qrels)  # fit on 2, report on 2
        report.save("calibration.json")
        calibrated = reranker.model_copy(
            update={"calibration": report.calibration, "min_probability": 0.5}
        )
        ```
    """
    from langchain_classic.retrievers import ContextualCompressionRetriever

    from langchain_ce_rerank.compressor import CrossEncoderCompressor
    from langchain_ce_rerank.evaluation.runner import evaluate

    compressor = getattr(pipeline, "base_compressor", None)
    if not isinstance(pipeline, ContextualCompressionRetriever) or not isinstance(
        compressor, CrossEncoderCompressor
    ):
        msg = (
            f"calibrate needs a reranking pipeline (a first stage and a "
            f"CrossEncoderCompressor, e.g. build_reranking_retriever(...)), got a "
            f"{type(pipeline).__name__}"
        )
        raise TypeError(msg)
    report = evaluate(pipeline, queries, qrels)
    return calibrate_scores(
        report.reranker_scores,
        qrels,
        engine=compressor.engine,
        method=method,
        holdout=holdout,
        seed=seed,
        unjudged=unjudged,
        relevant_grade=relevant_grade,
        min_probability=min_probability,
        source=source,
    )
