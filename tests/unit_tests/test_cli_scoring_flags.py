"""`--dtype` and `--passage-aggregation` on `ce-rerank query`, `eval` and `serve`.

In-process, as test_cli_query.py runs: a fake bi-encoder, the stand-in
reranker. Each error is one line in flag words; each value given reaches the
engine the command builds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from query_indexes import QUESTION, build_index, fake_bi_encoder

from langchain_ce_rerank.cli import _common, main
from langchain_ce_rerank.cli import query as query_command
from langchain_ce_rerank.compressor import CrossEncoderCompressor
from langchain_ce_rerank.engine.aggregation import PASSAGE_AGGREGATIONS
from langchain_ce_rerank.models import precision

DATASET = Path(__file__).parents[1] / "data" / "stdlib-docs"
BF16_CPU = frozenset({"avx512_bf16"})


@pytest.fixture(autouse=True)
def _root_logger() -> Iterator[None]:
    """`ce-rerank serve` points the root logger at this test's stderr; undo it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with fake_bi_encoder(monkeypatch):
        yield build_index(tmp_path, "ix")


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ce-rerank: error: ")
    assert "\n" not in err
    return err


def _command(name: str, index: Path, reranker: Path, *flags: str) -> list[str]:
    """`name`'s arguments up to the reranking options, then `flags`."""
    start = {
        "query": ["query", str(index), QUESTION, "--embedding", "fake"],
        "eval": ["eval", "--dataset", str(DATASET)],
        "serve": ["serve"],
    }[name]
    return [*start, "--reranker", str(reranker), *flags]


def _help(capsys: pytest.CaptureFixture[str], command: str) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", ["query", "eval", "serve"])
def test_help_offers_each_dtype_and_says_the_default(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(capsys, command)
    assert "--dtype {float32,bfloat16,float16}" in text
    described = text.split("--dtype {float32,bfloat16,float16}")[-1]
    assert "float16 is refused on CPU" in described
    assert "(default: float32)" in described


@pytest.mark.parametrize("command", ["query", "eval"])
def test_help_says_what_each_passage_aggregation_does(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(capsys, command)
    described = text.split("--passage-aggregation {max,mean_top2,max_debiased}")[-1]
    for what in ("max, its best window", "mean_top2, the mean of its two best"):
        assert what in described
    assert "max_debiased, its best less what chance adds" in described
    assert "with --long-documents max_passage" in described
    assert "(default: max)" in described


def test_the_flag_offers_the_engine_s_choices() -> None:
    assert _common.PASSAGE_AGGREGATIONS == PASSAGE_AGGREGATIONS


@pytest.mark.parametrize("command", ["query", "eval", "serve"])
def test_half_precision_on_cpu_is_refused_in_flag_words(
    command: str,
    index: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _command(command, index, standin_ce_path, "--dtype", "float16")
    err = _error(capsys, *args, "--device", "cpu")
    assert "--dtype float16 on --device cpu is refused" in err
    assert "--backend openvino with --int8" in err
    assert "dtype=" not in err


@pytest.mark.parametrize("command", ["query", "eval", "serve"])
def test_half_precision_on_the_device_picked_is_refused_before_loading(
    command: str,
    index: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No --device: the one the model would load on (no GPU here) is checked.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_flags", frozenset)
    args = _command(command, index, standin_ce_path, "--dtype", "bfloat16")
    err = _error(capsys, *args)
    assert "--dtype bfloat16 on --device cpu is refused" in err
    assert "no bfloat16 instructions" in err


@pytest.mark.parametrize("command", ["query", "eval", "serve"])
def test_half_precision_with_an_exporting_backend_is_refused_in_flag_words(
    command: str,
    index: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _command(command, index, standin_ce_path, "--dtype", "bfloat16")
    err = _error(capsys, *args, "--backend", "onnx", "--device", "cuda")
    assert "--dtype bfloat16 needs --backend torch: --backend onnx runs" in err
    assert "leave --dtype at 'float32' with --backend onnx" in err


@pytest.mark.parametrize("command", ["query", "eval"])
@pytest.mark.parametrize("long_documents", [[], ["--long-documents", "truncate"]])
def test_passage_aggregation_without_max_passage_is_refused(
    command: str,
    long_documents: list[str],
    index: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _command(command, index, standin_ce_path, *long_documents)
    err = _error(capsys, *args, "--passage-aggregation", "max")
    assert err == (
        "ce-rerank: error: --passage-aggregation max combines the scores of a "
        "document's windows, which only --long-documents max_passage scores (not "
        "--long-documents truncate); add --long-documents max_passage, or leave "
        "--passage-aggregation out"
    )


def _loaded(monkeypatch: pytest.MonkeyPatch) -> list[CrossEncoderCompressor]:
    """The reranker `ce-rerank query` loads, recorded as it loads."""
    loaded: list[CrossEncoderCompressor] = []
    real = query_command.load_reranker

    def spy(compressor: CrossEncoderCompressor) -> None:
        loaded.append(compressor)
        real(compressor)

    monkeypatch.setattr(query_command, "load_reranker", spy)
    return loaded


def test_query_scores_with_the_dtype_and_aggregation_given(
    index: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: BF16_CPU)
    loaded = _loaded(monkeypatch)
    args = _command(
        "query",
        index,
        standin_ce_path,
        "--device",
        "cpu",
        "--dtype",
        "bfloat16",
        "--long-documents",
        "max_passage",
        "--passage-aggregation",
        "mean_top2",
        "--json",
    )
    capsys.readouterr()
    assert main(args) == 0, capsys.readouterr().err
    (compressor,) = loaded
    assert compressor.passage_aggregation == "mean_top2"
    assert compressor.dtype == "bfloat16"
    model: Any = compressor.engine.load_model()
    assert model.dtype == torch.bfloat16
    scores = re.findall(r'"relevance_score": (\S+),', capsys.readouterr().out)
    assert scores
    assert all(isinstance(float(score), float) for score in scores)


def test_query_defaults_are_float32_and_max(
    index: Path,
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = _loaded(monkeypatch)
    capsys.readouterr()
    assert main(_command("query", index, standin_ce_path, "--json")) == 0
    (compressor,) = loaded
    assert (compressor.dtype, compressor.passage_aggregation) == ("float32", "max")


def test_serve_builds_its_engine_with_the_dtype_given(
    standin_ce_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("fastapi")
    from langchain_ce_rerank.serving import app, server

    monkeypatch.setattr(precision, "cpu_flags", lambda: BF16_CPU)
    built: list[Any] = []

    def create_app(engine: Any, settings: Any) -> object:
        built.append(engine)
        return object()

    # The engine is recorded and nothing is served: no socket is bound.
    monkeypatch.setattr(app, "create_app", create_app)
    monkeypatch.setattr(server, "bind_socket", lambda host, port: _Bound())
    monkeypatch.setattr(server, "serve", lambda *args, **kwargs: 0)
    args = _command("serve", Path(), standin_ce_path, "--dtype", "bfloat16")
    assert main([*args, "--device", "cpu", "--port", "0"]) == 0
    (engine,) = built
    assert engine.dtype == "bfloat16"
    assert engine.device == "cpu"


class _Bound:
    """What `bind_socket` returns, as far as `ce-rerank serve` reads it."""

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 1)
