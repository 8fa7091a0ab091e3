"""`ScoreCalibration`: applying, saving and loading a calibration, and what it is tied to.

Fitting is in test_probability_fit.py; the doors' `min_probability` in
test_min_probability.py.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from doubles import TableCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank import CrossEncoderCompressor, ScoreCalibration
from langchain_ce_rerank.engine import (
    CalibrationMismatchError,
    Reranker,
    ScoringIdentity,
)
from langchain_ce_rerank.engine.identity import model_fingerprint
from langchain_ce_rerank.engine.probability import (
    CALIBRATION_FORMAT,
    IsotonicMapping,
    PlattMapping,
    raw_score,
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def platt(
    slope: float = 1.5, intercept: float = -2.0, **identity: object
) -> ScoreCalibration:
    fitted_for = ScoringIdentity(**{"model": "doubles.TableCrossEncoder", **identity})
    return ScoreCalibration(
        mapping=PlattMapping(slope=slope, intercept=intercept), fitted_for=fitted_for
    )


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """A folder that looks like a model: resolve_model accepts it, nothing loads it."""
    folder = tmp_path / "model-a"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["Bert"]}')
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "tokenizer.json").write_text('{"vocab": {}}')
    (folder / "README.md").write_text("# a model card")
    return folder


# -- applying -------------------------------------------------------------------


def test_platt_is_the_logistic_of_the_raw_score() -> None:
    calibration = platt(1.5, -2.0)
    for score in (-3.0, 0.0, 1.0, 2.0, 7.5):
        assert calibration.probability(score) == pytest.approx(
            _sigmoid(1.5 * score - 2.0)
        )
    assert type(calibration.probability(1.0)) is float
    assert calibration.probabilities([0.0, 2.0]) == [
        calibration.probability(0.0),
        calibration.probability(2.0),
    ]


def test_isotonic_applies_exactly_as_scikit_learn_predicts() -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(7)
    x = rng.normal(size=300)
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * x))).astype(float)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(x, y)
    mapping = IsotonicMapping(
        scores=tuple(float(v) for v in reference.X_thresholds_),
        probabilities=tuple(float(v) for v in reference.y_thresholds_),
    )
    probes = np.concatenate(
        [rng.normal(scale=2, size=500), reference.X_thresholds_, [-50.0, 50.0]]
    )
    expected = reference.predict(probes)
    got = [mapping.probability(float(v)) for v in probes]
    assert got == pytest.approx(expected.tolist(), abs=1e-12)


def test_the_raw_score_is_calibrated_whatever_the_activation() -> None:
    calibration = platt(0.8, -1.0)
    for logit in (-30.0, -4.0, -0.5, 0.0, 0.5, 4.0, 30.0):
        through_sigmoid = calibration.probability(_sigmoid(logit), "sigmoid")
        assert through_sigmoid == pytest.approx(
            calibration.probability(logit), abs=1e-9
        )
    # Where the sigmoid saturated to exactly 0 or 1, the curve's limit is used.
    assert calibration.probability(1.0, "sigmoid") == 1.0
    assert calibration.probability(0.0, "sigmoid") == 0.0
    assert raw_score(0.5, "sigmoid") == 0.0
    assert raw_score(3.25, "none") == 3.25


def test_a_nan_score_has_a_nan_probability_and_a_flat_curve_stays_flat() -> None:
    assert math.isnan(platt().probability(math.nan))
    flat = platt(0.0, 0.4)
    assert flat.probability(math.inf) == pytest.approx(_sigmoid(0.4))
    assert flat.probability(1.0, "sigmoid") == pytest.approx(_sigmoid(0.4))


@pytest.mark.parametrize(
    ("scores", "probabilities", "problem"),
    [
        ((0.0, 0.0), (0.1, 0.2), "increasing"),
        ((1.0, 0.0), (0.1, 0.2), "increasing"),
        ((0.0, 1.0), (0.1, 1.2), r"\[0, 1\]"),
        ((0.0, 1.0, 2.0), (0.1, 0.5, 0.2), "monotone"),
        ((0.0, 1.0), (0.1,), "one probability per score"),
    ],
)
def test_a_malformed_isotonic_curve_is_refused(
    scores: tuple[float, ...], probabilities: tuple[float, ...], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        IsotonicMapping(scores=scores, probabilities=probabilities)


# -- the file -------------------------------------------------------------------


def test_saved_as_json_with_format_and_schema_version_and_read_back(
    tmp_path: Path,
) -> None:
    calibration = platt(max_length=256)
    path = calibration.save(tmp_path / "calibration.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == CALIBRATION_FORMAT
    assert data["schema_version"] == 1
    assert data["mapping"] == {"kind": "platt", "slope": 1.5, "intercept": -2.0}
    assert data["fitted_for"]["model"] == "doubles.TableCrossEncoder"
    assert data["fitted_for"]["max_length"] == 256
    loaded = ScoreCalibration.load(path)
    assert loaded == calibration
    assert loaded.probability(1.0) == calibration.probability(1.0)
    assert str(path) in repr(loaded)
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_isotonic_round_trips_exactly(tmp_path: Path) -> None:
    mapping = IsotonicMapping(scores=(-1.25, 0.1, 3.3), probabilities=(0.0, 1 / 3, 0.9))
    calibration = ScoreCalibration(
        mapping=mapping, fitted_for=ScoringIdentity(model="m")
    )
    loaded = ScoreCalibration.load(calibration.save(tmp_path / "c.json"))
    assert loaded.mapping == mapping  # floats survive JSON exactly


def _file(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "c.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _valid(**changes: object) -> dict[str, object]:
    return {**json.loads(platt().to_json()), **changes}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all", "not valid JSON"),
        ({"hello": 1}, "is not a score calibration"),
        (_valid(format="something-else"), "is not a score calibration"),
        (_valid(schema_version=2), "newer version, so upgrade"),
        (_valid(schema_version="1"), "schema_version '1'"),
        (_valid(mapping={"kind": "spline", "knots": []}), "malformed: mapping"),
        (_valid(mapping={"kind": "platt", "slope": 1.0}), "mapping.platt.intercept"),
        (_valid(extra_field=True), "extra_field"),
        (
            '{"format": "langchain-ce-rerank/score-calibration", "schema_version": 1,'
            ' "mapping": {"kind": "platt", "slope": NaN, "intercept": 0}}',
            "NaN is not a number",
        ),
    ],
)
def test_a_file_that_is_not_a_calibration_we_read_is_refused_saying_why(
    tmp_path: Path, content: object, message: str
) -> None:
    path = _file(tmp_path, content)
    with pytest.raises(ValueError, match=message) as caught:
        ScoreCalibration.load(path)
    assert str(path) in str(caught.value)


def test_a_pickle_is_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(pickle.dumps(platt()))
    with pytest.raises(ValueError, match="not a calibration file"):
        ScoreCalibration.load(path)


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ScoreCalibration.load(tmp_path / "nope.json")


# -- what a calibration is tied to ----------------------------------------------


def test_the_fingerprint_follows_the_files_not_the_folder_or_the_model_card(
    model_folder: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(model_folder, copy)
    # What a download with more formats or another card adds changes nothing.
    (copy / "README.md").write_text("# another card")
    (copy / "tf_model.h5").write_bytes(b"tensorflow weights")
    (copy / "pytorch_model.bin").write_bytes(b"the same weights, as a pickle")
    (copy / ".gitattributes").write_text("*.bin filter=lfs")
    (copy / "onnx").mkdir()
    (copy / "onnx" / "model.onnx").write_bytes(b"an export")
    assert model_fingerprint(copy) == model_fingerprint(model_folder)
    assert model_fingerprint(model_folder).startswith("sha256:")


@pytest.mark.parametrize(
    "changed", ["model.safetensors", "config.json", "tokenizer.json"]
)
def test_other_weights_config_or_tokenizer_change_the_fingerprint(
    model_folder: Path, tmp_path: Path, changed: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(model_folder, copy)
    path = copy / changed
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    assert model_fingerprint(copy) != model_fingerprint(model_folder)


def test_pytorch_weights_count_when_there_are_no_safetensors(tmp_path: Path) -> None:
    folder = tmp_path / "bin-only"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"weights one")
    before = model_fingerprint(folder)
    (folder / "pytorch_model.bin").write_bytes(b"other, longer weights")
    assert model_fingerprint(folder) != before


def test_a_calibration_follows_its_model_to_another_folder(
    model_folder: Path, tmp_path: Path
) -> None:
    fitted_for = Reranker(model=str(model_folder)).scoring_identity()
    calibration = ScoreCalibration(
        mapping=PlattMapping(slope=1.0, intercept=0.0), fitted_for=fitted_for
    )
    moved = tmp_path / "moved"
    shutil.copytree(model_folder, moved)
    engine = Reranker(model=str(moved), calibration=calibration)
    assert engine.calibration == calibration
    # The activation does not change the raw score, so it does not matter.
    Reranker(model=str(moved), calibration=calibration, activation="sigmoid")


def test_a_calibration_for_other_weights_is_refused_saying_why(
    model_folder: Path, tmp_path: Path
) -> None:
    fitted_for = Reranker(model=str(model_folder)).scoring_identity()
    calibration = ScoreCalibration(
        mapping=PlattMapping(slope=1.0, intercept=0.0), fitted_for=fitted_for
    )
    other = tmp_path / "model-b"
    shutil.copytree(model_folder, other)
    (other / "model.safetensors").write_bytes(b"other weights")
    with pytest.raises(ValidationError, match="model: fitted for") as caught:
        Reranker(model=str(other), calibration=calibration)
    message = str(caught.value)
    assert str(model_folder) in message
    assert str(other) in message
    assert "fit one for this reranker" in message
    with pytest.raises(CalibrationMismatchError, match="model: fitted for"):
        calibration.check(Reranker(model=str(other)).scoring_identity())


@pytest.mark.parametrize(
    ("fitted", "settings", "difference"),
    [
        # int8 shifts scores; the accelerated backends need their extras, so
        # the calibration is the one fitted with them.
        ({"backend": "onnx"}, {}, "backend: fitted with 'onnx', here 'torch'"),
        (
            {"backend": "openvino", "quantization": "int8"},
            {},
            "quantization: fitted with 'int8', here None",
        ),
        ({}, {"max_length": 128}, "max_length: fitted with None, here 128"),
        ({}, {"long_documents": "max_passage"}, "long_documents: fitted with 'trunc"),
        ({}, {"content_template": "{title}\n{page_content}"}, "content_template"),
    ],
)
def test_a_calibration_fitted_under_another_scoring_setup_is_refused(
    model_folder: Path,
    fitted: dict[str, object],
    settings: dict[str, object],
    difference: str,
) -> None:
    identity = Reranker(model=str(model_folder)).scoring_identity()
    calibration = ScoreCalibration(
        mapping=PlattMapping(slope=1.0, intercept=0.0),
        fitted_for=identity.model_copy(update=fitted),
    )
    with pytest.raises(ValidationError, match=difference):
        Reranker(model=str(model_folder), calibration=calibration, **settings)


def test_a_scorer_object_is_tied_to_its_class_and_a_model_id_to_its_name(
    tmp_path: Path,
) -> None:
    calibration = platt()
    Reranker(model=TableCrossEncoder(), calibration=calibration)

    class Another:
        def score(self, pairs: list[tuple[str, str]]) -> list[float]:
            return [0.0 for _ in pairs]

    with pytest.raises(ValidationError, match=r"TableCrossEncoder'.*Another"):
        Reranker(model=Another(), calibration=calibration)
    identity = Reranker(model=Another()).scoring_identity()
    assert identity.fingerprint is None
    assert identity.model.endswith("Another")


def test_a_door_refuses_a_calibration_for_another_model_too(model_folder: Path) -> None:
    with pytest.raises(ValidationError, match="CrossEncoderCompressor") as caught:
        CrossEncoderCompressor(model=str(model_folder), calibration=platt())
    assert "model: fitted for 'doubles.TableCrossEncoder'" in str(caught.value)
    door = CrossEncoderCompressor(model=TableCrossEncoder())
    with pytest.raises(CalibrationMismatchError):
        door.model_copy(update={"model": str(model_folder), "calibration": platt()})


def test_the_calibration_may_be_given_as_the_path_of_its_file(tmp_path: Path) -> None:
    path = platt().save(tmp_path / "c.json")
    door = CrossEncoderCompressor(model=TableCrossEncoder(), calibration=str(path))
    assert door.calibration == platt()
    copy = door.model_copy(update={"calibration": str(path)})
    assert copy.calibration == platt()
