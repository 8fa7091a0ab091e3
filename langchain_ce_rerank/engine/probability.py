"""`ScoreCalibration`: a reranker's raw scores as probabilities of relevance.

A cross-encoder's score orders documents but does not say how likely a
document is to be relevant: ms-marco logits run from about -11 to 11, a
sigmoid of them is not a probability of anything measured, and another model
has another scale. A calibration is fitted once on labelled queries
(`ce-rerank eval --calibrate FILE`, or
`langchain_ce_rerank.evaluation.calibrate`) and maps a score to the fraction
of documents with that score that were relevant, so `min_probability=0.5`
means the same for every model.

What is calibrated: the model's **raw score, before `activation`** (the
logit that `activation="none"` reports). A reranker with
`activation="sigmoid"` reports `sigmoid(logit)`; the logit is recovered
exactly as `log(p) - log1p(-p)` before the mapping, so one calibration serves
both activations (past a logit of about 36 the sigmoid rounds to 1.0, and
the mapping's limit is used, which is its value there to within 1e-15).

A calibration is tied to the scores it was fitted on (`ScoringIdentity`: the
model's weights, backend, quantization and what it reads) and is refused,
with the reason, by a reranker that computes them differently. Applying one
needs nothing but the standard library; it is saved as a small JSON file,
never a pickle.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from typing_extensions import Self

from langchain_ce_rerank.engine.identity import ScoringIdentity

__all__ = [
    "CALIBRATION_FORMAT",
    "CALIBRATION_SCHEMA_VERSION",
    "CalibrationMismatchError",
    "FitSummary",
    "IsotonicMapping",
    "PlattMapping",
    "ScoreCalibration",
    "raw_score",
]

CALIBRATION_FORMAT: Final = "langchain-ce-rerank/score-calibration"
"""The `format` every calibration file declares."""

CALIBRATION_SCHEMA_VERSION: Final = 1
"""The newest `schema_version` this version reads and the one it writes."""


class CalibrationMismatchError(ValueError):
    """A calibration was fitted on scores computed differently from these.

    The message names the calibration, every difference (model, backend,
    quantization, what the model reads) and how to get a calibration that
    fits: refit it for this reranker, or use the reranker it was fitted for.
    """


def _sigmoid(value: float) -> float:
    # Split by sign so large values of either sign never overflow exp().
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)


def raw_score(score: float, activation: str) -> float:
    """The model's raw score (before `activation`) behind a reported score.

    Args:
        score: A score as the reranker reports it (`relevance_score`).
        activation: The reranker's `activation`: `"none"` (the score is the
            raw score) or `"sigmoid"` (the logit is recovered; 0.0 and 1.0,
            where the sigmoid saturated, give minus and plus infinity).

    Returns:
        The raw score.

    Example:
        ```python
        from langchain_ce_rerank.engine.probability import raw_score

        print(raw_score(0.5, "sigmoid"), raw_score(2.5, "none"))  # 0.0 2.5
        ```
    """
    if activation != "sigmoid" or math.isnan(score):
        return score
    if score <= 0.0:
        return -math.inf
    if score >= 1.0:
        return math.inf
    return math.log(score) - math.log1p(-score)


class PlattMapping(BaseModel):
    """Platt scaling: `probability = sigmoid(slope * raw_score + intercept)`.

    A logistic curve fitted to the labels; two numbers, smooth, and fine
    with few labels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["platt"] = "platt"
    slope: float = Field(allow_inf_nan=False)
    """How fast the probability rises with the score (negative: it falls)."""
    intercept: float = Field(allow_inf_nan=False)
    """The log-odds of relevance at a raw score of 0."""

    def probability(self, raw: float) -> float:
        """The probability of relevance at raw score `raw`."""
        if math.isnan(raw):
            return raw
        if self.slope == 0.0:  # flat, also at an infinite raw score
            return _sigmoid(self.intercept)
        return _sigmoid(self.slope * raw + self.intercept)


class IsotonicMapping(BaseModel):
    """Isotonic regression: a monotone step-wise linear curve through the labels.

    The curve passes through `(scores[i], probabilities[i])`, is linear in
    between and flat beyond the ends (scikit-learn's
    `IsotonicRegression(out_of_bounds="clip")`, whose thresholds these are).
    It follows any monotone shape, but needs more labels than Platt scaling
    to be smooth.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["isotonic"] = "isotonic"
    scores: tuple[float, ...] = Field(min_length=1)
    """Raw scores where the curve bends, strictly increasing."""
    probabilities: tuple[float, ...] = Field(min_length=1)
    """The probability at each of `scores`, all in [0, 1], monotone."""

    @model_validator(mode="after")
    def _check_curve(self) -> Self:
        xs, ys = self.scores, self.probabilities
        if len(xs) != len(ys):
            msg = (
                f"an isotonic calibration needs one probability per score, got "
                f"{len(xs)} scores and {len(ys)} probabilities"
            )
            raise ValueError(msg)
        if not all(math.isfinite(x) for x in xs) or any(
            b <= a for a, b in itertools.pairwise(xs)
        ):
            msg = "an isotonic calibration's scores must be finite and increasing"
            raise ValueError(msg)
        if not all(0.0 <= y <= 1.0 for y in ys):
            msg = "an isotonic calibration's probabilities must be in [0, 1]"
            raise ValueError(msg)
        steps = [b - a for a, b in itertools.pairwise(ys)]
        if not (all(s >= 0 for s in steps) or all(s <= 0 for s in steps)):
            msg = "an isotonic calibration's probabilities must be monotone"
            raise ValueError(msg)
        return self

    def probability(self, raw: float) -> float:
        """The probability of relevance at raw score `raw` (as `numpy.interp`)."""
        xs, ys = self.scores, self.probabilities
        if math.isnan(raw):
            return raw
        if raw <= xs[0]:
            return ys[0]
        if raw >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, raw) - 1
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
        return slope * (raw - xs[i]) + ys[i]


Mapping = Annotated[PlattMapping | IsotonicMapping, Field(discriminator="kind")]


class FitSummary(BaseModel):
    """What a calibration was fitted on, kept in its file for the record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queries: int = Field(ge=0)
    """Labelled queries whose candidates were used."""
    pairs: int = Field(ge=0)
    """(query, candidate) pairs fitted on."""
    relevant: int = Field(ge=0)
    """How many of them were relevant."""
    unjudged: Literal["irrelevant", "skip"] = "irrelevant"
    """How candidates without a judgement counted: as irrelevant, or not at all."""
    relevant_grade: int = 1
    """The lowest qrels grade counted as relevant."""
    source: str | None = None
    """The labelled data, e.g. the dataset folder."""


class ScoreCalibration(BaseModel):
    """A mapping from a reranker's raw scores to probabilities of relevance.

    Fit one with `ce-rerank eval --calibrate FILE` or
    `langchain_ce_rerank.evaluation.calibrate(...)`, then pass it to a door
    (`CrossEncoderCompressor(calibration=...)`, the LlamaIndex
    `CrossEncoderRerank`, `ce-rerank query --calibration FILE`): each result
    gets `relevance_probability`, and `min_probability` drops results below it.
    A door refuses a calibration fitted for another model or scoring setup
    (`CalibrationMismatchError`, saying what differs). Files are JSON, never
    pickle; `load` refuses another format or a newer schema.

    Example:
        ```python
        from langchain_ce_rerank.engine import ScoreCalibration
        from langchain_ce_rerank.engine.identity import ScoringIdentity
        from langchain_ce_rerank.engine.probability import PlattMapping

        calibration = ScoreCalibration(
            mapping=PlattMapping(slope=1.5, intercept=-2.0),
            fitted_for=ScoringIdentity(model="cross-encoder/ms-marco-MiniLM-L6-v2"),
        )
        print(round(calibration.probability(2.0), 3))  # 0.731
        calibration.save("calibration.json")
        print(ScoreCalibration.load("calibration.json") == calibration)  # True
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mapping: Mapping
    """The fitted curve, from raw score to probability."""

    fitted_for: ScoringIdentity
    """The scores it was fitted on: the model and how it scored."""

    fitted_on: FitSummary | None = None
    """The labelled data it was fitted on, for the record."""

    _source: str | None = PrivateAttr(default=None)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The method and the model, not every threshold of the curve."""
        yield "method", self.mapping.kind
        yield "model", self.fitted_for.model
        if self._source is not None:
            yield "source", self._source

    def __eq__(self, other: object) -> bool:
        """Equal when the curve, the identity and the summary are (not the file)."""
        if not isinstance(other, ScoreCalibration):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(self.to_json())

    @property
    def name(self) -> str:
        """How messages name it: its file when loaded from one."""
        if self._source is not None:
            return f"calibration {self._source!r}"
        return f"this {self.mapping.kind} calibration"

    def probability(self, score: float, activation: str = "none") -> float:
        """The probability that a document with this score is relevant.

        Args:
            score: The score as the reranker reports it (`relevance_score`).
            activation: The reranker's `activation`; the raw score behind a
                sigmoid is recovered first (see the module).

        Returns:
            A plain float in [0, 1] (NaN for a NaN score).
        """
        return float(self.mapping.probability(raw_score(score, activation)))

    def probabilities(
        self, scores: Sequence[float], activation: str = "none"
    ) -> list[float]:
        """`probability` of each score, in order."""
        return [self.probability(score, activation) for score in scores]

    def check(self, identity: ScoringIdentity) -> None:
        """Refuse to serve a reranker whose scores mean something else.

        Args:
            identity: The reranker's (`scoring_identity(engine)`).

        Raises:
            CalibrationMismatchError: The calibration was fitted for another
                model, or for scores computed another way; the message says
                what differs and how to fit one for this reranker.
        """
        differences = self.fitted_for.differences(identity)
        if not differences:
            return
        msg = (
            f"{self.name} was fitted on scores this reranker does not compute "
            f"({'; '.join(differences)}), so its probabilities would not hold "
            "for these scores; fit one for this reranker (ce-rerank eval "
            "--calibrate FILE with the same model and options, or "
            "langchain_ce_rerank.evaluation.calibrate(...)), or use the model "
            "and options it was fitted for"
        )
        raise CalibrationMismatchError(msg)

    # -- the file ----------------------------------------------------------------

    def to_json(self) -> str:
        """The calibration as the JSON text `save` writes (format, schema version)."""
        data = {
            "format": CALIBRATION_FORMAT,
            "schema_version": CALIBRATION_SCHEMA_VERSION,
            "maps": "raw score (before activation) -> probability of relevance",
            **self.model_dump(mode="json"),
        }
        return json.dumps(data, indent=2, allow_nan=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration to `path` as JSON, atomically.

        Args:
            path: The file to write (its folder must exist).

        Returns:
            The path written.
        """
        target = Path(path)
        text = self.to_json()
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> ScoreCalibration:
        """Read a calibration from the JSON text `to_json` makes.

        Args:
            text: The JSON text.
            source: How to name it in messages (its file).

        Raises:
            ValueError: Not JSON, not a calibration, a newer schema version
                than this version reads, or a malformed field; the message
                says which.
        """
        where = source or "the calibration"
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except ValueError as err:
            msg = f"{where} is not a calibration file (not valid JSON: {err})"
            raise ValueError(msg) from None
        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            msg = (
                f"{where} is not a score calibration (its format is {found!r}, "
                f"not {CALIBRATION_FORMAT!r}); make one with ce-rerank eval "
                "--calibrate FILE"
            )
            raise ValueError(msg)
        version = data.get("schema_version")
        if (
            not isinstance(version, int)
            or isinstance(version, bool)
            or not 1 <= version <= CALIBRATION_SCHEMA_VERSION
        ):
            msg = (
                f"{where} has schema_version {version!r}; this version of "
                f"langchain-ce-rerank reads 1 to {CALIBRATION_SCHEMA_VERSION}"
                + (
                    ": it was written by a newer version, so upgrade "
                    "langchain-ce-rerank or fit it again with this one"
                    if isinstance(version, int) and version > 1
                    else ""
                )
            )
            raise ValueError(msg)
        fields = {
            k: v for k, v in data.items() if k not in ("format", "schema_version")
        }
        fields.pop("maps", None)
        try:
            calibration = cls.model_validate(fields)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
                for e in err.errors()
            )
            msg = f"{where} is malformed: {problems}"
            raise ValueError(msg) from None
        calibration._source = source
        return calibration

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ScoreCalibration:
        """Read a calibration file that `save` (or `ce-rerank eval --calibrate`) wrote.

        Args:
            path: The JSON file.

        Raises:
            FileNotFoundError: No such file.
            ValueError: The file is not a calibration this version reads.
        """
        source = os.fspath(path)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            msg = f"{source!r} is not a calibration file (not UTF-8 text)"
            raise ValueError(msg) from None
        return cls.from_json(text, source=source)


def _no_constant(name: str) -> float:
    msg = f"{name} is not a number a calibration may hold"
    raise ValueError(msg)
