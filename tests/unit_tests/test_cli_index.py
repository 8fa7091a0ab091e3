"""`ce-rerank index` in-process, with a fake embedding model: what it loads and says.

The end-to-end runs with the real model are in
`tests/integration_tests/test_cli.py`; here the loader is replaced, so a test
can count how often the command loads a model and read what it printed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from doubles import AxisEmbeddings
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank import models
from langchain_ce_rerank.cli import main

WORDS = ["alpha", "beta", "gamma"]


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so tqdm draws its bars."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every model `ce-rerank index` loads; the model is a fake."""
    # main() sets these with setdefault: keep them out of the other tests.
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")
    loaded: list[str] = []

    def load(model: str, **kwargs: object) -> Embeddings:
        loaded.append(model)
        return AxisEmbeddings(WORDS)

    monkeypatch.setattr(models, "load_embeddings", load)
    # The command quiets the ingest logger; the other tests want it as it was.
    ingest_logger = logging.getLogger("langchain_ce_rerank.ingest")
    level = ingest_logger.level
    yield loaded
    ingest_logger.setLevel(level)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("alpha beta", encoding="utf-8")
    (root / "b.txt").write_text("gamma", encoding="utf-8")
    return root


def _index(*args: str) -> int:
    return main(["index", *args])


def test_a_rerun_on_unchanged_files_loads_no_model(
    docs: Path, tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "ix")
    assert _index(str(docs), "--out", out) == 0
    assert len(loads) == 1
    capsys.readouterr()

    assert _index(str(docs), "--out", out) == 0
    assert len(loads) == 1  # answered from the chunk ids' content hashes
    said = capsys.readouterr()
    assert "Indexed 2 files" in said.out
    assert "0 chunks added, 2 unchanged, 0 removed (2 in the index)" in said.out
    assert said.err == ""  # no bar: nothing was embedded


def test_the_bar_counts_only_the_chunks_embedded(
    docs: Path,
    tmp_path: Path,
    loads: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = str(tmp_path / "ix")
    assert _index(str(docs), "--out", out) == 0
    (docs / "b.txt").write_text("gamma changed", encoding="utf-8")
    capsys.readouterr()
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert _index(str(docs), "--out", out) == 0
    assert len(loads) == 2  # a file changed: the model is needed
    assert "1 chunk added, 1 unchanged, 1 removed" in capsys.readouterr().out
    bar = terminal.getvalue()
    assert "Embedding" in bar
    assert "1/1" in bar
    assert "2/2" not in bar


def test_one_file_and_one_chunk_are_singular(
    docs: Path, tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _index(str(docs / "b.txt"), "--out", str(tmp_path / "ix")) == 0
    out = capsys.readouterr().out
    assert "Indexed 1 file into" in out
    assert "1 chunk added," in out


def test_skipped_files_are_counted_and_listed_in_full_only_with_verbose(
    docs: Path, tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(12):
        (docs / f"blob{number:02}").write_bytes(b"\x00\x01" * 10)
    assert _index(str(docs), "--out", str(tmp_path / "ix")) == 0
    err = capsys.readouterr().err
    assert "Skipped 12 (12 binary):" in err
    assert len([line for line in err.splitlines() if "blob" in line]) == 5
    assert "... and 7 more (--verbose lists them all)" in err
    assert max(len(line) for line in err.splitlines()) < 200

    assert _index(str(docs), "--out", str(tmp_path / "ix"), "--verbose") == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "blob" in line]) == 12
    assert "more" not in err


def test_include_and_exclude_choose_the_files(
    docs: Path, tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (docs / "copyright").write_text("alpha", encoding="utf-8")
    out = str(tmp_path / "ix")
    assert _index(str(docs), "--out", out, "--include", "copyright") == 0
    assert "Indexed 1 file into" in capsys.readouterr().out
    out2 = str(tmp_path / "ix2")
    assert _index(str(docs), "--out", out2, "--exclude", "*.md") == 0
    assert "Indexed 2 files into" in capsys.readouterr().out


def test_an_empty_corpus_from_many_paths_is_one_short_line(
    tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for number in range(300):
        path = tmp_path / f"package-with-a-long-name-{number:03}" / "data"
        path.parent.mkdir()
        path.write_bytes(b"\x00binary")
        paths.append(str(path))
    assert _index(*paths, "--out", str(tmp_path / "ix")) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert len(err) < 600
    assert "and 297 more paths" in err
    assert "300 skipped: 300 binary" in err
    assert loads == []
