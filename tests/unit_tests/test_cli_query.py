"""`ce-rerank query --first-stage`, in-process: a fake bi-encoder, the stand-in reranker.

The end-to-end runs with the real model are in
`tests/integration_tests/test_cli_first_stage.py`; here the embedding loader
is replaced (as in test_cli_index.py), so each case takes a moment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from query_indexes import QUESTION, build_index, fake_bi_encoder

from langchain_ce_rerank.cli import main


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every embedding model the commands load; the model is a fake."""
    with fake_bi_encoder(monkeypatch) as loaded:
        yield loaded


@pytest.fixture
def with_bm25(tmp_path: Path, loads: list[str]) -> Path:
    return build_index(tmp_path, "ix")


@pytest.fixture
def without_bm25(tmp_path: Path, loads: list[str]) -> Path:
    return build_index(tmp_path, "plain", "--no-bm25")


def _query(
    capsys: pytest.CaptureFixture[str], index: Path, reranker: Path, *flags: str
) -> str:
    capsys.readouterr()
    # The fake records no model name: --embedding names one for the loader.
    args = [str(index), QUESTION, "-k", "4", "--top-n", "4", "--embedding", "fake"]
    status = main(["query", *args, "--reranker", str(reranker), *flags])
    said = capsys.readouterr()
    assert status == 0, said.err
    return said.out


def _json(
    capsys: pytest.CaptureFixture[str], index: Path, reranker: Path, *flags: str
) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(
        _query(capsys, index, reranker, "--json", *flags)
    )
    return payload


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["query", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ce-rerank: error: ")
    assert "\n" not in err
    return err


def test_an_index_with_bm25_is_searched_hybrid_by_default(
    with_bm25: Path, standin_ce_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = _json(capsys, with_bm25, standin_ce_path)
    assert payload["first_stage_kind"] == "hybrid"
    assert (payload["hybrid_fusion"], payload["alpha"]) == ("rrf", 0.7)
    candidates = payload["first_stage"]
    assert [c["rank"] for c in candidates] == [1, 2, 3, 4]
    for entry in candidates + payload["results"]:
        assert {"dense_rank", "dense_score", "bm25_rank", "bm25_score"} <= set(entry)
        assert entry["dense_rank"] is not None or entry["bm25_rank"] is not None
    by_source = {
        r["source"].rsplit("/", 1)[-1]: r for r in payload["results"] if r["source"]
    }
    assert by_source["errors.md"]["bm25_rank"] == 1  # only BM25 sees E0425
    assert by_source["tail.md"]["bm25_rank"] is None  # nor "docker" nor "E0425"
    assert by_source["tail.md"]["dense_rank"] is not None


def test_the_hybrid_table_says_who_found_each_candidate(
    with_bm25: Path, standin_ce_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _query(capsys, with_bm25, standin_ce_path)
    header = next(line for line in out.splitlines() if "move" in line)
    names = [cell.strip() for cell in header.strip("┃").split("┃")]
    assert names[:5] == ["move", "rerank score", "cosine", "bm25", "found by"]
    rows = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]
    found = {row[5].rsplit("/", 1)[-1]: row[4] for row in rows}
    assert found["errors.md"] == "both 3/1"  # dense ranks it low, BM25 first
    assert found["tail.md"] == "dense 4"  # BM25 cannot see it
    assert "4 hybrid (rrf of dense and BM25, alpha 0.7) first-stage candidates" in out
    footer = " ".join(out.split())
    assert "found by = the side that returned it and its rank there" in footer


def test_first_stage_dense_and_bm25_are_searched_as_asked(
    with_bm25: Path, standin_ce_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dense = _json(capsys, with_bm25, standin_ce_path, "--first-stage", "dense")
    assert dense["first_stage_kind"] == "dense"
    assert (dense["hybrid_fusion"], dense["alpha"]) == (None, None)
    for entry in dense["first_stage"]:
        assert (entry["dense_rank"], entry["dense_score"]) == (
            entry["rank"],
            entry["score"],
        )
        assert (entry["bm25_rank"], entry["bm25_score"]) == (None, None)
    table = _query(capsys, with_bm25, standin_ce_path, "--first-stage", "dense")
    assert "found by" not in table
    assert "cosine" in table
    keyword = _json(capsys, with_bm25, standin_ce_path, "--first-stage", "bm25")
    assert keyword["first_stage_kind"] == "bm25"
    ranks = [e["bm25_rank"] for e in keyword["first_stage"]]
    assert ranks == list(range(1, len(ranks) + 1))
    assert len(ranks) == 3  # "logs" alone holds neither term
    assert all(e["dense_rank"] is None for e in keyword["first_stage"])


def test_alpha_and_hybrid_fusion_reach_the_retriever(
    with_bm25: Path, standin_ce_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ("--alpha", "1", "--hybrid-fusion", "weighted")
    payload = _json(capsys, with_bm25, standin_ce_path, *flags)
    assert (payload["hybrid_fusion"], payload["alpha"]) == ("weighted", 1.0)
    # All weight on the dense side: the fused order is the dense order.
    dense_ranks = [e["dense_rank"] for e in payload["first_stage"]]
    assert dense_ranks == sorted(dense_ranks)


def test_an_index_without_bm25_is_searched_dense_by_default(
    without_bm25: Path, standin_ce_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = _json(capsys, without_bm25, standin_ce_path)
    assert payload["first_stage_kind"] == "dense"
    assert "found by" not in _query(capsys, without_bm25, standin_ce_path)


@pytest.mark.parametrize(
    ("flags", "asked"),
    [
        (("--first-stage", "hybrid"), "--first-stage hybrid needs"),
        (("--first-stage", "bm25"), "--first-stage bm25 needs"),
        (("--alpha", "0.3"), "--alpha (for --first-stage hybrid) needs"),
    ],
)
def test_keyword_search_on_an_index_without_bm25_is_an_error(
    without_bm25: Path,
    loads: list[str],
    capsys: pytest.CaptureFixture[str],
    flags: tuple[str, ...],
    asked: str,
) -> None:
    loaded = len(loads)
    err = _error(capsys, str(without_bm25), QUESTION, *flags)
    assert asked in err
    assert "--no-bm25" in err
    assert "--first-stage dense" in err
    assert f"ce-rerank index PATHS... --out {without_bm25} --bm25" in err
    assert len(loads) == loaded  # found before any model was loaded


@pytest.mark.parametrize("flag", [("--alpha", "0.3"), ("--hybrid-fusion", "rrf")])
@pytest.mark.parametrize("stage", ["dense", "bm25"])
def test_hybrid_options_with_another_first_stage_are_an_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: tuple[str, str],
    stage: str,
) -> None:
    missing = str(tmp_path / "nowhere")  # checked before the index is
    err = _error(capsys, missing, QUESTION, "--first-stage", stage, *flag)
    assert f"{flag[0]} applies to --first-stage hybrid only" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--alpha", "1.5"), "argument --alpha: must be from 0 (BM25 only) to 1"),
        (("--alpha", "nan"), "argument --alpha: must be from 0 (BM25 only) to 1"),
        (("--alpha", "half"), "argument --alpha: must be a number from 0 to 1"),
        (("--first-stage", "sparse"), "argument --first-stage: invalid choice"),
        (("--hybrid-fusion", "max"), "argument --hybrid-fusion: invalid choice"),
    ],
)
def test_malformed_first_stage_flags_are_usage_errors(
    capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["query", "ix", QUESTION, *flags])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_calibrated_hybrid_table_has_the_probability_and_found_by_columns(
    with_bm25: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from langchain_ce_rerank.engine import Reranker, ScoreCalibration
    from langchain_ce_rerank.engine.probability import PlattMapping

    identity = Reranker(model=str(standin_ce_path)).scoring_identity()
    calibration = ScoreCalibration(  # flat at sigmoid(0) = 0.5
        mapping=PlattMapping(slope=0.0, intercept=0.0), fitted_for=identity
    ).save(tmp_path / "calibration.json")
    flags = ("--calibration", str(calibration), "--min-probability", "0.4")
    out = _query(capsys, with_bm25, standin_ce_path, *flags)
    header = next(line for line in out.splitlines() if "move" in line)
    names = [cell.strip() for cell in header.strip("┃").split("┃")]
    assert names[:6] == [
        "move",
        "rerank score",
        "probability",
        "cosine",
        "bm25",
        "found by",
    ]
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 4
    assert all("0.500" in row for row in rows)
    assert "relevance probability of at least 0.4" in " ".join(out.split())
    payload = _json(capsys, with_bm25, standin_ce_path, *flags)
    assert [r["relevance_probability"] for r in payload["results"]] == [0.5] * 4
    assert payload["first_stage_kind"] == "hybrid"
    # Nothing clears 0.6: a sentence, not an empty table.
    flags = ("--calibration", str(calibration), "--min-probability", "0.6")
    out = " ".join(_query(capsys, with_bm25, standin_ce_path, *flags).split())
    assert "No document reached --min-probability 0.6" in out
    assert "probability of 0.500" in out


def test_an_unscored_row_says_not_scored_and_has_no_probability() -> None:
    from langchain_core.documents import Document

    from langchain_ce_rerank.cli.query import _query_rows, _table

    scored = Document(
        page_content="docker volume backup",
        id="a",
        metadata={
            "retrieval_rank": 2,
            "retrieval_score": 0.4,
            "dense_rank": 2,
            "dense_score": 0.4,
            "relevance_score": 1.5,
            "relevance_probability": 0.75,
        },
    )
    unscored = Document(
        page_content="docker logs",
        id="b",
        metadata={
            "retrieval_rank": 1,
            "retrieval_score": 0.5,
            "bm25_rank": 1,
            "bm25_score": 2.0,
            "reranked": False,
        },
    )
    rows = _query_rows([scored, unscored], "hybrid")
    assert rows[0]["relevance_probability"] == 0.75
    assert "relevance_probability" not in rows[1]
    assert rows[1]["relevance_score"] is None
    assert rows[1]["reranked"] is False
    table = _table("q", [scored, unscored], rows, 200, "hybrid")
    headers = [str(column.header) for column in table.columns]
    assert headers[:6] == [
        "move",
        "rerank score",
        "probability",
        "cosine",
        "bm25",
        "found by",
    ]
    cells = [[str(c) for c in column._cells] for column in table.columns]
    assert cells[1] == ["1.500", "not scored"]
    assert cells[2] == ["0.750", ""]
    assert cells[5] == ["dense 2", "bm25 1"]


def test_instruction_reaches_a_reranker_that_reads_one(
    with_bm25: Path, causal_lm_standin_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = _json(capsys, with_bm25, causal_lm_standin_path)
    told = _json(
        capsys, with_bm25, causal_lm_standin_path, "--instruction", "Find logs"
    )
    assert plain["instruction"] is None
    assert told["instruction"] == "Find logs"
    scores = {r["id"]: r["relevance_score"] for r in plain["results"]}
    told_scores = {r["id"]: r["relevance_score"] for r in told["results"]}
    assert scores.keys() == told_scores.keys()
    assert scores != told_scores


def test_instruction_for_a_reranker_that_reads_none_is_refused_in_flag_words(
    with_bm25: Path, standin_ce_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _error(
        capsys,
        str(with_bm25),
        QUESTION,
        "--embedding",
        "fake",
        "--reranker",
        str(standin_ce_path),
        "--instruction",
        "Find logs",
    )
    assert "takes no instruction" in err
    assert "Leave --instruction unset" in err
    assert "instruction=" not in err


def test_a_blank_instruction_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["query", "ix", "q", "--instruction", "  "])
    assert exit_.value.code == 2
    assert "argument --instruction: is empty" in capsys.readouterr().err
