"""End to end: `ce-rerank index --no-bm25` and `query --first-stage`, real MiniLM.

The in-process cases, with a fake bi-encoder, are in
tests/unit_tests/test_cli_index.py and test_cli_query.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_runner import cli_error, run_cli

ROOT = Path(__file__).parents[2]
EXAMPLE_DATA = ROOT / "examples" / "data"
QUESTION = "How do I restore a Docker volume backup on another host?"
SIDES = {"dense_rank", "dense_score", "bm25_rank", "bm25_score"}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "ix"
    result = run_cli("index", str(EXAMPLE_DATA), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def _query(index: Path, reranker: Path, *flags: str) -> str:
    result = run_cli(
        "query", str(index), QUESTION, "-k", "6", "--top-n", "3",
        "--reranker", str(reranker), *flags,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def _json(index: Path, reranker: Path, *flags: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(_query(index, reranker, "--json", *flags))
    return payload


def test_the_default_first_stage_is_hybrid_and_says_who_found_what(
    index: Path, standin_ce_path: Path
) -> None:
    out = _query(index, standin_ce_path)
    assert "found by" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 3
    for line in rows:
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        assert cells[4].split()[0] in ("dense", "bm25", "both")
    payload = _json(index, standin_ce_path)
    assert payload["first_stage_kind"] == "hybrid"
    for entry in payload["first_stage"] + payload["results"]:
        assert set(entry) >= SIDES
    both = [
        e
        for e in payload["first_stage"]
        if None not in (e["dense_rank"], e["bm25_rank"])
    ]
    assert both  # the backup text holds the query's words and its meaning


def test_first_stage_dense_is_the_plain_cosine_search(
    index: Path, standin_ce_path: Path
) -> None:
    payload = _json(index, standin_ce_path, "--first-stage", "dense")
    assert payload["first_stage_kind"] == "dense"
    scores = [entry["dense_score"] for entry in payload["first_stage"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < score <= 1.0 for score in scores)  # cosines
    assert all(entry["bm25_rank"] is None for entry in payload["first_stage"])


def test_no_bm25_on_an_existing_index_then_query_searches_dense(
    index: Path, standin_ce_path: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "ix"
    shutil.copytree(index, copy)
    result = run_cli("index", str(EXAMPLE_DATA), "--out", str(copy), "--no-bm25")
    assert result.returncode == 0, result.stderr
    assert "0 chunks added" in result.stdout
    assert "Removed its BM25 keyword index (--no-bm25)" in result.stdout
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["bm25"] is False
    assert not [role for role in manifest["files"] if role.startswith("bm25_")]
    payload = _json(copy, standin_ce_path)
    assert payload["first_stage_kind"] == "dense"
    err = cli_error("query", str(copy), QUESTION, "--first-stage", "hybrid")
    assert "--first-stage hybrid needs a BM25 keyword index" in err
    assert "--no-bm25" in err
    assert f"--out {copy} --bm25" in err
