"""`ce-rerank eval --first-stage`: which first stages, checked early, and --json.

The full command on a BEIR folder runs in tests/integration_tests/test_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import cli_error, run_cli
from doubles import AxisEmbeddings, TableCrossEncoder
from langchain_core.documents import Document

from langchain_ce_rerank import FaissVectorStore, build_reranking_retriever
from langchain_ce_rerank.cli import _parser, main, print_report
from langchain_ce_rerank.cli._common import CliError
from langchain_ce_rerank.cli.eval import (
    FIRST_STAGE_CHOICES,
    check_first_stages,
    first_stages_for,
)
from langchain_ce_rerank.evaluation import FIRST_STAGES, evaluate

DATASET = Path(__file__).parents[1] / "data" / "stdlib-docs"
WORDS = ["red", "green", "blue", "sky"]
DOCS = [
    Document(page_content="red", id="red"),
    Document(page_content="green", id="green"),
    Document(page_content="blue sky", id="sky"),
]


def test_the_flag_offers_the_first_stages_evaluate_knows() -> None:
    assert FIRST_STAGE_CHOICES == FIRST_STAGES


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ([], None),  # not given: evaluate's default
        (["hybrid"], ["hybrid"]),
        (["bm25", "dense"], ["bm25", "dense"]),
        (["dense,hybrid"], ["dense", "hybrid"]),
        (["dense,", "bm25"], ["dense", "bm25"]),
    ],
)
def test_first_stage_takes_spaces_or_commas(
    given: list[str], names: list[str] | None
) -> None:
    flags = ["--first-stage", *given] if given else []
    args = _parser().parse_args(["eval", "--dataset", str(DATASET), *flags])
    assert check_first_stages(args) == names


def test_an_unknown_first_stage_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--dataset", str(DATASET), "--first-stage", "dense,sparse"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --first-stage: invalid choice: 'sparse'" in err
    assert "(choose from dense, bm25, hybrid)" in err


def test_a_repeated_first_stage_fails_before_any_file_is_read(tmp_path: Path) -> None:
    err = cli_error(
        "eval", "--dataset", str(tmp_path / "missing"), "--first-stage", "dense,dense"
    )
    assert err == (
        "ce-rerank: error: --first-stage names 'dense' twice; "
        "give each first stage once"
    )


def test_the_default_and_bm25_follow_what_the_index_can_search() -> None:
    embeddings = AxisEmbeddings(WORDS)
    keyword = FaissVectorStore.from_documents(DOCS, embeddings).as_retriever()
    dense_only = FaissVectorStore.from_documents(
        DOCS, embeddings, bm25=False
    ).as_retriever()
    assert first_stages_for(keyword, None, "ix") == ("dense", "bm25", "hybrid")
    assert first_stages_for(keyword, ["bm25"], "ix") == ("bm25",)
    assert first_stages_for(dense_only, None, "ix") == ("dense",)
    assert first_stages_for(dense_only, ["dense"], "ix") == ("dense",)
    for asked in (["bm25"], ["dense", "hybrid"]):
        with pytest.raises(CliError) as err:
            first_stages_for(dense_only, asked, "ix")
        assert str(err.value) == (
            f"--first-stage {asked[-1]}: --index 'ix' has no keyword (BM25) "
            "index, so only --first-stage dense can run on it"
        )


def test_help_says_what_each_first_stage_costs_and_how_to_pick_fewer() -> None:
    result = run_cli("eval", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "--first-stage NAME [NAME ...]" in text
    assert "three times the reranker's time of one" in text
    assert "e.g. --first-stage hybrid" in text
    assert "(default: dense bm25 hybrid, or dense alone" in text
    assert "'hybrid + rerank'" in text


def test_json_carries_every_number_the_table_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = FaissVectorStore.from_documents(DOCS, AxisEmbeddings(WORDS))
    pipeline = build_reranking_retriever(
        vectorstore=store, reranker=TableCrossEncoder({"blue sky": 2.0}), k=3, top_n=2
    )
    report = evaluate(
        pipeline, {"a": "sky", "b": "red"}, {"a": {"sky": 1}, "b": {"red": 1}}
    )
    data = json.loads(json.dumps(report.to_dict()))  # what --json writes
    print_report(report)
    table = capsys.readouterr().out
    assert (
        f"{data['num_queries']} queries, k={data['k']}, top_n={data['top_n']}" in table
    )
    rows = {
        cells[0]: cells[1:]
        for line in table.splitlines()
        if line.startswith("│")
        for cells in [[cell.strip() for cell in line.strip("│").split("│")]]
    }
    assert list(rows) == [config["name"] for config in data["configurations"]]
    for config in data["configurations"]:
        latency = config["latency_ms"]
        assert rows[config["name"]] == [
            *(f"{value:.4f}" for value in config["metrics"].values()),
            f"{latency['first_stage']:.1f}",
            f"{latency['rerank']:.1f}",
            f"{latency['total']:.1f}",
        ]
        assert config["first_stage"] in FIRST_STAGES


def test_an_instruction_the_reranker_cannot_read_fails_before_the_corpus(
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_ce_rerank import models

    embedded: list[str] = []
    monkeypatch.setattr(
        models, "load_embeddings", lambda name, **_: embedded.append(name)
    )
    capsys.readouterr()
    status = main(
        [
            "eval",
            "--dataset",
            str(DATASET),
            "--reranker",
            str(standin_ce_path),
            "--instruction",
            "Find the function",
        ]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert "takes no instruction" in err
    assert "Leave --instruction unset" in err
    assert embedded == []  # refused before the corpus is embedded
