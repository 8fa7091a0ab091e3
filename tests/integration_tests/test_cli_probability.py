"""`ce-rerank eval --calibrate`, `query --calibration --min-probability` and `serve
--calibration`, as a user runs them (real subprocesses, the stand-in reranker).

The stand-in's scores are meaningless, so most calibrations here are written
by hand for it: a flat curve at 0.3 makes every probability known.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from cli_runner import cli_error, run_cli

from langchain_ce_rerank.engine import Reranker, ScoreCalibration, ScoringIdentity
from langchain_ce_rerank.engine.probability import PlattMapping

ROOT = Path(__file__).parents[2]
DATASET = ROOT / "tests" / "data" / "stdlib-docs"
QUESTION = "How do I restore a Docker volume backup on another host?"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probability") / "ix"
    result = run_cli("index", str(ROOT / "examples" / "data"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def flat(identity: ScoringIdentity, probability: float = 0.3) -> ScoreCalibration:
    logit = math.log(probability / (1 - probability))
    return ScoreCalibration(
        mapping=PlattMapping(slope=0.0, intercept=logit), fitted_for=identity
    )


@pytest.fixture(scope="module")
def for_standin(
    standin_ce_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    identity = Reranker(model=str(standin_ce_path)).scoring_identity()
    return flat(identity).save(tmp_path_factory.mktemp("cal") / "standin.json")


def query(index: Path, standin: Path, *extra: str) -> list[str]:
    return [
        "query",
        str(index),
        QUESTION,
        "-k",
        "4",
        "--top-n",
        "3",
        "--reranker",
        str(standin),
        *extra,
    ]


def test_query_shows_each_results_probability(
    index: Path, standin_ce_path: Path, for_standin: Path
) -> None:
    args = query(index, standin_ce_path, "--calibration", str(for_standin))
    result = run_cli(*args, "--min-probability", "0.2")
    assert result.returncode == 0, result.stderr
    assert "probability" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 3
    assert all("0.300" in row for row in rows)
    # The footer wraps at the terminal's width (longer with hybrid's note).
    assert "relevance probability of at least 0.2" in " ".join(result.stdout.split())


def test_when_nothing_clears_min_probability_a_sentence_says_why(
    index: Path, standin_ce_path: Path, for_standin: Path
) -> None:
    args = query(index, standin_ce_path, "--calibration", str(for_standin))
    result = run_cli(*args, "--min-probability", "0.5")
    assert result.returncode == 0, result.stderr
    assert "┏" not in result.stdout  # no empty table
    assert (
        "No document reached --min-probability 0.5: the best of the 3 reranked "
        "candidates has a relevance probability of 0.300"
    ) in " ".join(result.stdout.split())
    as_json = run_cli(*args, "--min-probability", "0.5", "--json")
    payload = json.loads(as_json.stdout)
    assert payload["results"] == []
    assert payload["min_probability"] == 0.5
    assert payload["empty_reason"].startswith("No document reached")


def test_query_refuses_a_calibration_for_another_model(
    index: Path, standin_ce_path: Path, tmp_path: Path
) -> None:
    other = flat(ScoringIdentity(model="cross-encoder/some-other-model"))
    path = other.save(tmp_path / "other.json")
    err = cli_error(*query(index, standin_ce_path, "--calibration", str(path)))
    assert f"--calibration {path}: calibration {str(path)!r} was fitted" in err
    assert "model: fitted for 'cross-encoder/some-other-model'" in err
    assert "pass the --reranker and options it was fitted with" in err


def test_query_checks_its_calibration_options(
    index: Path, standin_ce_path: Path, tmp_path: Path
) -> None:
    err = cli_error(*query(index, standin_ce_path, "--min-probability", "0.5"))
    assert "--min-probability 0.5 needs --calibration FILE" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "something"}')
    err = cli_error(*query(index, standin_ce_path, "--calibration", str(broken)))
    assert "--calibration: " in err
    assert "is not a score calibration" in err
    err = cli_error(
        *query(index, standin_ce_path, "--calibration", str(tmp_path / "nope.json"))
    )
    assert "does not exist" in err
    usage = run_cli(*query(index, standin_ce_path, "--min-probability", "1.5"))
    assert usage.returncode == 2
    assert "must be a probability from 0 to 1" in usage.stderr


def test_eval_calibrate_fits_reports_and_writes_a_file_query_accepts(
    index: Path, standin_ce_path: Path, tmp_path: Path
) -> None:
    # A copy of the stand-in under another name is the same model.
    copy = tmp_path / "standin-copy"
    shutil.copytree(standin_ce_path, copy)
    target = tmp_path / "calibration.json"
    result = run_cli(
        "eval",
        "--dataset",
        str(DATASET),
        "-k",
        "4",
        "--top-n",
        "2",
        "--reranker",
        str(copy),
        "--calibrate",
        str(target),
        "--calibration-method",
        "isotonic",
        "--first-stage",
        "hybrid",
        "dense",
        "--json",
        str(tmp_path / "report.json"),
    )
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "isotonic calibration of" in out
    assert "reported on 12 held out" in out
    assert "Brier" in out
    assert f"Calibration written to {target}" in out
    # Fitted on one first stage's candidates: the first asked for, named.
    assert "scores of the hybrid first stage's candidates (the first one" in out
    calibration = ScoreCalibration.load(target)
    assert calibration.fitted_for.model == str(copy)
    assert calibration.fitted_on is not None
    assert calibration.fitted_on.queries == 13
    assert calibration.fitted_on.source == str(DATASET)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["calibration"]["file"] == str(target)
    assert report["calibration"]["first_stage"] == "hybrid"
    assert [c["name"] for c in report["configurations"]][:2] == [
        "hybrid",
        "hybrid + rerank",
    ]
    assert report["calibration"]["cuts"][0]["name"] == "min_probability 0.5"
    used = run_cli(*query(index, standin_ce_path, "--calibration", str(target)))
    assert used.returncode == 0, used.stderr
    assert "probability" in used.stdout


def test_eval_calibration_options_need_calibrate() -> None:
    err = cli_error("eval", "--dataset", str(DATASET), "--holdout", "0.3")
    assert "--holdout set how --calibrate fits; add --calibrate FILE" in err


def test_serve_checks_its_calibration_options(
    standin_ce_path: Path, tmp_path: Path
) -> None:
    err = cli_error("serve", "--calibration", str(tmp_path / "nope.json"))
    assert "--calibration" in err
    assert "does not exist" in err
    other = flat(ScoringIdentity(model="cross-encoder/some-other-model"))
    path = other.save(tmp_path / "other.json")
    err = cli_error(
        "serve",
        "--reranker",
        str(standin_ce_path),
        "--calibration",
        str(path),
        "--port",
        "0",
    )
    assert f"--calibration {path}: " in err
    assert "model: fitted for 'cross-encoder/some-other-model'" in err
