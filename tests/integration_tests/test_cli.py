"""End to end: ce-rerank index, query and eval, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_ce_rerank import _export
from langchain_ce_rerank.cli import main

ROOT = Path(__file__).parents[2]
EXAMPLE_DATA = ROOT / "examples" / "data"
DATASET = ROOT / "tests" / "data" / "stdlib-docs"
QUESTION = "How do I restore a Docker volume backup on another host?"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langchain_ce_rerank.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"},
        timeout=600,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus") / "data"
    shutil.copytree(EXAMPLE_DATA, folder)
    (folder / "legacy.txt").write_bytes("caf\xe9 latin-1 text".encode("latin-1"))
    return folder


@pytest.fixture(scope="module")
def index(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "ix"
    result = _cli("index", str(corpus), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Indexed 5 files" in result.stdout
    assert "legacy.txt: not UTF-8" in result.stderr  # skipped, listed, no crash
    return out


def test_query_table_shows_movement_scores_source_and_snippet(
    index: Path, standin_ce_path: Path
) -> None:
    result = _cli(
        "query",
        str(index),
        QUESTION,
        "-k",
        "6",
        "--top-n",
        "3",
        "--reranker",
        str(standin_ce_path),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for column in ("move", "rerank score", "cosine", "source", "snippet"):
        assert column in out
    assert out.count(" -> ") >= 3
    assert "docker-volume-backup.md" in out
    assert "6 first-stage candidates reranked" in out


def test_query_json(index: Path, standin_ce_path: Path) -> None:
    result = _cli(
        "query",
        str(index),
        QUESTION,
        "-k",
        "6",
        "--top-n",
        "3",
        "--reranker",
        str(standin_ce_path),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["query"] == QUESTION
    assert len(payload["first_stage"]) == 6
    assert len(payload["results"]) == 3
    top_cosine = payload["first_stage"][0]
    assert top_cosine["rank"] == 1
    row = payload["results"][0]
    assert set(row) >= {
        "id",
        "rank",
        "retrieval_rank",
        "retrieval_score",
        "relevance_score",
        "source",
        "text",
    }
    scores = [r["relevance_score"] for r in payload["results"]]
    assert scores == sorted(scores, reverse=True)


def test_reindex_updates_changed_and_removes_deleted_files(
    index: Path, corpus: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "ix"
    shutil.copytree(index, copy)
    (corpus / "container-logs.md").write_text("# Logs\n\nUse docker logs --follow.\n")
    (corpus / "release-checklist.txt").unlink()
    try:
        result = _cli("index", str(corpus), "--out", str(copy))
        assert result.returncode == 0, result.stderr
        assert "1 chunks added" in result.stdout
        assert "2 removed" in result.stdout
    finally:
        shutil.copy(EXAMPLE_DATA / "container-logs.md", corpus / "container-logs.md")
        shutil.copy(
            EXAMPLE_DATA / "release-checklist.txt", corpus / "release-checklist.txt"
        )


def test_eval_on_the_beir_dataset(standin_ce_path: Path, tmp_path: Path) -> None:
    result = _cli(
        "eval",
        "--dataset",
        str(DATASET),
        "-k",
        "4",
        "--top-n",
        "2",
        "--reranker",
        str(standin_ce_path),
        "--json",
        str(tmp_path / "eval.json"),
        "--save-run",
        str(tmp_path / "runs"),
    )
    assert result.returncode == 0, result.stderr
    assert "first stage" in result.stdout
    assert "nDCG@10" in result.stdout
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["num_queries"] == 25
    names = [c["name"] for c in data["configurations"]]
    assert names == ["first stage", "+ cross-encoder", "+ cross-encoder, RRF"]
    first = data["configurations"][0]["metrics"]
    assert set(first) == {"nDCG@10", "MRR@10", "Recall@2", "Recall@4"}
    assert first["nDCG@10"] > 0.5  # the real MiniLM first stage finds these
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["cross_encoder.trec", "cross_encoder_RRF.trec", "first_stage.trec"]
    line = (tmp_path / "runs" / "first_stage.trec").read_text().splitlines()[0]
    assert line.split()[1] == "Q0"
    assert line.split()[3] == "1"


# -- errors: one line on stderr, non-zero exit ---------------------------------


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ce-rerank: error: ")
    assert "\n" not in err
    assert "Traceback" not in err
    return err


def test_missing_index_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    err = _error(capsys, "query", str(tmp_path / "nope"), "question")
    assert "does not exist" in err


def test_corrupted_index(
    capsys: pytest.CaptureFixture[str], index: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(index, broken)
    index_file = next(broken.glob("index.*.faiss"))
    index_file.write_bytes(index_file.read_bytes()[:50])
    err = _error(capsys, "query", str(broken), "question")
    assert index_file.name in err
    assert "truncated" in err


def test_empty_corpus(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.pdf").write_bytes(b"%PDF")
    err = _error(
        capsys, "index", str(tmp_path / "empty"), "--out", str(tmp_path / "ix")
    )
    assert "empty corpus" in err
    assert not (tmp_path / "ix").exists()


def test_missing_input_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = _error(
        capsys, "index", str(tmp_path / "missing"), "--out", str(tmp_path / "ix")
    )
    assert "no such file or folder" in err


def test_model_that_cannot_be_loaded(
    capsys: pytest.CaptureFixture[str], index: Path
) -> None:
    err = _error(capsys, "query", str(index), "question", "--reranker", "acme/nothing")
    assert "'acme/nothing' could not be loaded" in err


def test_eval_needs_data(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, "eval", "--reranker", "x")
    assert "--dataset DIR" in err


def test_bad_numbers_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["query", "ix", "q", "-k", "0"])
    assert info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["index", "query", "eval"])
def test_help_is_complete(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert len(text.splitlines()) > 10
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") and "  " in stripped:
            assert stripped.split("  ", 1)[1].strip(), f"undocumented option: {line}"


def test_eval_against_an_index_built_from_a_beir_corpus(
    standin_ce_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ix"
    built = _cli("index", str(DATASET / "corpus.jsonl"), "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert "Indexed 1 files" in built.stdout
    result = _cli(
        "eval",
        "--index",
        str(out),
        "--queries",
        str(DATASET / "queries.jsonl"),
        "--qrels",
        str(DATASET / "qrels" / "test.tsv"),
        "-k",
        "3",
        "--top-n",
        "1",
        "--reranker",
        str(standin_ce_path),
        "--json",
        "-",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    first = data["configurations"][0]["metrics"]
    assert data["num_queries"] == 25
    assert first["Recall@3"] > 0.5  # chunk doc_ids map back to corpus ids


def test_int8_needs_an_accelerated_backend(
    capsys: pytest.CaptureFixture[str], index: Path
) -> None:
    err = _error(capsys, "query", str(index), "question", "--int8")
    assert "needs backend='openvino'" in err


def test_missing_backend_extra_is_one_line(
    capsys: pytest.CaptureFixture[str], index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_export, "_find_spec", lambda name: None)
    err = _error(
        capsys, "query", str(index), "question", "--backend", "openvino", "--int8"
    )
    assert 'pip install "langchain-ce-rerank[openvino]"' in err


@pytest.mark.openvino
def test_query_with_the_openvino_int8_reranker(
    index: Path, standin_ce_path: Path, tmp_path: Path
) -> None:
    env_cache = {"LANGCHAIN_CE_RERANK_CACHE": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "langchain_ce_rerank.cli",
            "query",
            str(index),
            QUESTION,
            "--reranker",
            str(standin_ce_path),
            "--backend",
            "openvino",
            "--int8",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env_cache},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["results"]) == 5
    (export,) = (tmp_path / "exports").iterdir()
    assert "-openvino-int8-" in export.name
