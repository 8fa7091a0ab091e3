"""`ce-rerank query --parents` with --diversity and --calibration/--min-probability.

In-process, as in test_cli_query.py: a fake bi-encoder, the stand-in
reranker, files of several chunks each (so a file is more than its chunk).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from doubles import AxisEmbeddings
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank import models
from langchain_ce_rerank.cli import main
from langchain_ce_rerank.engine import Reranker, ScoreCalibration
from langchain_ce_rerank.engine.probability import PlattMapping

WORDS = ["docker", "volume", "backup", "logs"]
QUESTION = "docker volume backup"
# Each file is three paragraphs, cut into chunks by `index --chunk-size`.
FILES = {
    "backup.md": "docker volume backup.\n\nrestore it later.\n\ncopy the archive.",
    "copy.md": "docker volume backup.\n\nrestore it later.\n\ncopy it again.",
    "logs.md": "docker logs.\n\nfollow them.\n\ntail the end.",
    "tail.md": "logs.\n\nrotate logs.\n\nship logs.",
}


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")

    def load(model: str, **kwargs: object) -> Embeddings:
        return AxisEmbeddings(WORDS)

    monkeypatch.setattr(models, "load_embeddings", load)
    ingest_logger = logging.getLogger("langchain_ce_rerank.ingest")
    level = ingest_logger.level
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in FILES.items():
        (docs / name).write_text(text, encoding="utf-8")
    out = tmp_path / "ix"
    flags = ["--chunk-size", "25", "--chunk-overlap", "0"]
    assert main(["index", str(docs), "--out", str(out), *flags]) == 0
    yield out
    ingest_logger.setLevel(level)


def _run(
    capsys: pytest.CaptureFixture[str], index: Path, reranker: Path, *flags: str
) -> str:
    capsys.readouterr()
    args = [str(index), QUESTION, "-k", "12", "--embedding", "fake", "--parents"]
    status = main(["query", *args, "--reranker", str(reranker), *flags])
    said = capsys.readouterr()
    assert status == 0, said.err
    return said.out


def _json(
    capsys: pytest.CaptureFixture[str], index: Path, reranker: Path, *flags: str
) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(
        _run(capsys, index, reranker, "--json", *flags)
    )
    return payload


def _flat_calibration(standin: Path, folder: Path, **identity: object) -> Path:
    """A calibration that maps every score to sigmoid(0) = 0.5."""
    fitted_for = Reranker(model=str(standin), **identity).scoring_identity()
    return ScoreCalibration(
        mapping=PlattMapping(slope=0.0, intercept=0.0), fitted_for=fitted_for
    ).save(folder / f"calibration-{len(identity)}.json")


def test_the_index_holds_several_chunks_per_file(
    index: Path, standin_ce_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    args = [str(index), QUESTION, "-k", "12", "--embedding", "fake", "--json"]
    assert main(["query", *args, "--reranker", str(standin_ce_path)]) == 0
    chunks = json.loads(capsys.readouterr().out)["first_stage"]
    assert len(chunks) > len(FILES)


def test_parents_with_diversity_return_whole_files_and_say_what_diversity_dropped(
    index: Path, standin_ce_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = _json(capsys, index, standin_ce_path, "--top-n", "2")
    payload = _json(
        capsys, index, standin_ce_path, "--top-n", "2", "--diversity", "0.9"
    )
    assert payload["diversity"] == 0.9
    rows = payload["results"]
    assert len(rows) == 2
    for row in rows:
        assert row["text"] == FILES[Path(row["source"]).name]
        assert row["parent_chunks"]
    # Four files, one result each: two shown, two dropped, each with a reason.
    # Diversity, comparing the whole files, gave one of the plain top two's
    # slots to a file less like the first.
    assert {row["reason"] for row in plain["dropped"]} == {"top_n"}
    reasons = {row["id"]: row["reason"] for row in payload["dropped"]}
    assert sorted(reasons.values()) == ["diversity", "top_n"]
    [pushed_out] = [key for key, why in reasons.items() if why == "diversity"]
    assert pushed_out in [row["id"] for row in plain["results"]]
    assert rows[0]["id"] == plain["results"][0]["id"]
    assert "retrieval_embedding" not in json.dumps(payload)
    table = " ".join(
        _run(
            capsys, index, standin_ce_path, "--top-n", "2", "--diversity", "0.9"
        ).split()
    )
    assert "Ordered for diversity 0.9" in table
    assert "the source files of" in table


def test_parents_with_min_probability_keep_the_files_that_clear_it(
    index: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    calibration = _flat_calibration(
        standin_ce_path, tmp_path, long_documents="max_passage"
    )
    flags = ("--calibration", str(calibration), "--min-probability", "0.4")
    payload = _json(capsys, index, standin_ce_path, "--top-n", "3", *flags)
    rows = payload["results"]
    assert len(rows) == 3
    assert [row["relevance_probability"] for row in rows] == [0.5] * 3
    assert all(row["text"] == FILES[Path(row["source"]).name] for row in rows)
    assert payload["min_probability"] == 0.4
    # Nothing clears 0.6: a sentence, not an empty table, for the parents too.
    flags = ("--calibration", str(calibration), "--min-probability", "0.6")
    out = " ".join(_run(capsys, index, standin_ce_path, *flags).split())
    assert "No document reached --min-probability 0.6" in out
    assert "best of the 4 reranked candidates" in out
    assert "probability of 0.500" in out
    assert "┃" not in out
    payload = _json(capsys, index, standin_ce_path, *flags)
    assert payload["results"] == []
    assert {row["reason"] for row in payload["dropped"]} == {"min_probability"}
    assert "No document reached" in payload["empty_reason"]


def test_parents_refuse_a_calibration_fitted_on_truncated_chunks(
    index: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    calibration = _flat_calibration(standin_ce_path, tmp_path)
    capsys.readouterr()
    args = [str(index), QUESTION, "--embedding", "fake", "--parents"]
    flags = ["--calibration", str(calibration), "--min-probability", "0.4"]
    assert main(["query", *args, "--reranker", str(standin_ce_path), *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ce-rerank: error: --calibration {calibration}")
    assert "long_documents" in err
    assert "ce-rerank eval --calibrate" in err
