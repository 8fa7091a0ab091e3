"""`CalibrationReport`: how well a fitted calibration holds, to read or plot.

The measurements behind it are here too: the reliability table (pairs by
calibrated probability, against the fraction that was relevant), the Brier
score, and what a cut returns (`ThresholdCut`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.engine.probability import ScoreCalibration
from langchain_ce_rerank.optional import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CalibrationReport",
    "ReliabilityBin",
    "ThresholdCut",
    "brier_score",
    "reliability_bins",
    "same_recall_threshold",
    "threshold_cut",
]


@dataclass(frozen=True)
class ReliabilityBin:
    """Pairs whose calibrated probability fell in `[low, high)`, and how they did."""

    low: float
    high: float
    count: int
    """Pairs in the bin."""
    mean_probability: float
    """The mean calibrated probability of those pairs."""
    fraction_relevant: float
    """The fraction of them that were relevant: close to `mean_probability`
    when the calibration holds."""


@dataclass(frozen=True)
class ThresholdCut:
    """What one cut returns from the reported pairs (every candidate, no top_n)."""

    name: str
    """The cut, e.g. `"min_probability 0.5"`."""
    threshold: float | None
    """Its threshold on its own scale: a probability for `min_probability`
    and the sigmoid, the reranker's reported score (`relevance_score`) for a
    score threshold; None when no threshold reaches the recall."""
    returned: int
    """Pairs kept."""
    relevant: int
    """Relevant pairs among them."""
    precision: float | None
    """The fraction of returned pairs that are relevant (None: none returned)."""
    recall: float | None
    """The fraction of relevant candidates returned (None: none relevant)."""


@dataclass
class CalibrationReport:
    """A fitted `ScoreCalibration` and how well it holds on held-out queries.

    `calibrate(...)` returns one (see its example); print it, or let Jupyter
    show it, for the tables, and `plot()` for the reliability diagram.

    Example:
        ```python
        from langchain_ce_rerank.engine import ScoreCalibration, ScoringIdentity
        from langchain_ce_rerank.engine.probability import PlattMapping
        from langchain_ce_rerank.evaluation import CalibrationReport
        from langchain_ce_rerank.evaluation.probability_report import (
            reliability_bins,
            threshold_cut,
        )

        probabilities, labels = [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]
        report = CalibrationReport(
            calibration=ScoreCalibration(
                mapping=PlattMapping(slope=1.0, intercept=0.0),
                fitted_for=ScoringIdentity(model="my-model"),
            ),
            fit_queries=["q1"],
            report_queries=["q2"],
            in_sample=False,
            reliability=reliability_bins(probabilities, labels),
            brier={"calibrated": 0.025},
            cuts=[threshold_cut("min_probability 0.5", 0.5, [0, 0, 1, 1], labels)],
            min_probability=0.5,
            pairs=4,
            relevant=2,
        )
        print(report)
        ```
    """

    calibration: ScoreCalibration
    """The fitted mapping, tied to the reranker it was fitted for."""
    fit_queries: list[str]
    """Query ids it was fitted on."""
    report_queries: list[str]
    """Query ids the numbers below come from (the fit queries themselves
    when `in_sample`)."""
    in_sample: bool
    """True when nothing was held out (`holdout=0`): the numbers are then
    optimistic."""
    reliability: list[ReliabilityBin]
    """The reported pairs by calibrated probability, in tenths."""
    brier: dict[str, float]
    """Mean squared error of the probabilities on the reported pairs (lower
    is better): `"calibrated"`, `"sigmoid of the raw score"` (what
    `activation="sigmoid"` reports), `"base rate"` (the fit pairs' share of
    relevant ones, for every pair)."""
    cuts: list[ThresholdCut]
    """`min_probability`, the raw `score_threshold` with the same recall,
    and the sigmoid of the raw score at the same value, side by side."""
    min_probability: float
    """The probability the cuts were measured at."""
    pairs: int
    """Reported (query, candidate) pairs."""
    relevant: int
    """Relevant pairs among them."""
    empty_queries: int = 0
    """Reported queries that `min_probability` leaves with no result."""
    empty_queries_with_relevant: int = 0
    """Of those, the ones that had a relevant candidate it dropped."""
    notes: list[str] = field(default_factory=list)
    """Warnings about the fit: few labels, a decreasing curve, a tiny split."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration to `path` as JSON (`ScoreCalibration.save`).

        Returns:
            The path written.
        """
        return self.calibration.save(path)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the calibration's file content and the numbers."""
        data = asdict(self)
        data["calibration"] = self.calibration.model_dump(mode="json")
        return data

    def __str__(self) -> str:
        from langchain_ce_rerank.evaluation.rendering import calibration_text

        return calibration_text(self)

    def _repr_html_(self) -> str:
        from langchain_ce_rerank.evaluation.rendering import calibration_html

        return calibration_html(self)

    def plot(self, *, ax: Axes | None = None) -> Axes:
        """The reliability diagram: fraction relevant against calibrated probability.

        Each point is one bin of `reliability`, labelled with its pair count;
        on the dashed diagonal the probabilities are exactly right.

        Args:
            ax: Axes to draw on; None makes a new pyplot figure (shown inline
                in Jupyter, by `plt.show()` in a script).

        Returns:
            The matplotlib `Axes` drawn on.

        Raises:
            ImportError: matplotlib is not installed (`pip install matplotlib`).
        """
        plt = require(
            "matplotlib.pyplot", extra="matplotlib", feature="CalibrationReport.plot()"
        )
        if ax is None:
            _, ax = plt.subplots(
                figsize=(4.8, 4.2), layout="constrained", facecolor="white"
            )
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        xs = [b.mean_probability for b in self.reliability]
        ys = [b.fraction_relevant for b in self.reliability]
        ax.plot(xs, ys, marker="o", color="C0")
        for b in self.reliability:
            ax.annotate(
                str(b.count),
                (b.mean_probability, b.fraction_relevant),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize="small",
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("relevance_probability (bin mean)")
        ax.set_ylabel("fraction relevant")
        where = "in sample" if self.in_sample else "held out"
        ax.set_title(
            f"{self.calibration.mapping.kind}: {len(self.report_queries)} queries "
            f"{where}, Brier {self.brier['calibrated']:.3f}",
            fontsize="medium",
        )
        ax.spines[["top", "right"]].set_visible(False)
        return ax


def reliability_bins(
    probabilities: Sequence[float], labels: Sequence[int]
) -> list[ReliabilityBin]:
    """Pairs binned by probability in tenths; empty bins are left out.

    Args:
        probabilities: Each pair's calibrated probability.
        labels: 1 for a relevant pair, 0 otherwise.
    """
    import numpy as np

    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * 10).astype(np.int64), 9)
    bins = []
    for b in range(10):
        inside = which == b
        count = int(inside.sum())
        if count:
            bins.append(
                ReliabilityBin(
                    low=b / 10,
                    high=(b + 1) / 10,
                    count=count,
                    mean_probability=float(p[inside].mean()),
                    fraction_relevant=float(y[inside].mean()),
                )
            )
    return bins


def threshold_cut(
    name: str, threshold: float | None, kept: Sequence[bool], labels: Sequence[int]
) -> ThresholdCut:
    """What keeping the pairs marked in `kept` returns, as a `ThresholdCut`.

    Args:
        name: The cut's name in the report.
        threshold: Its threshold, for the record.
        kept: Per pair, whether the cut keeps it.
        labels: 1 for a relevant pair, 0 otherwise.
    """
    returned = sum(kept)
    relevant = sum(1 for k, y in zip(kept, labels, strict=True) if k and y)
    total_relevant = sum(labels)
    return ThresholdCut(
        name=name,
        threshold=threshold,
        returned=returned,
        relevant=relevant,
        precision=relevant / returned if returned else None,
        recall=relevant / total_relevant if total_relevant else None,
    )


def same_recall_threshold(
    scores: Sequence[float], labels: Sequence[int], recall: float
) -> float | None:
    """The highest score threshold whose recall reaches `recall` (None: none).

    A threshold `t` keeps the pairs scoring at least `t`; with tied scores
    the recall can pass `recall` at the first threshold that reaches it.
    """
    total = sum(labels)
    if not total or recall <= 0:
        return None
    found = 0
    for score, label in sorted(zip(scores, labels, strict=True), reverse=True):
        found += label
        if found / total >= recall - 1e-12:
            return score
    return None


def brier_score(labels: Sequence[int], probabilities: Sequence[float]) -> float:
    """Mean squared error of the probabilities (scikit-learn's); NaN without pairs."""
    if not labels:
        return math.nan
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(labels, probabilities, pos_label=1))
