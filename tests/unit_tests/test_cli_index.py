"""`ce-rerank index` in-process, with a fake embedding model: what it loads and says.

The end-to-end runs with the real model are in
`tests/integration_tests/test_cli.py`; here the loader is replaced, so a test
can count how often the command loads a model and read what it printed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from doubles import AxisEmbeddings
from query_indexes import fake_bi_encoder

from langchain_ce_rerank.cli import main

WORDS = ["alpha", "beta", "gamma"]


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so tqdm draws its bars."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every model `ce-rerank index` loads; the model is a fake."""
    with fake_bi_encoder(monkeypatch, WORDS) as loaded:
        yield loaded


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


def _manifest(folder: Path) -> dict[str, object]:
    import json

    manifest: dict[str, object] = json.loads((folder / "manifest.json").read_text())
    return manifest


def _bm25_files(folder: Path) -> set[str]:
    files = _manifest(folder)["files"]
    assert isinstance(files, dict)
    return {role for role in files if role.startswith("bm25_")}


def test_a_new_index_keeps_bm25_unless_no_bm25(
    docs: Path, tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_ce_rerank.store import has_bm25_index

    assert _index(str(docs), "--out", str(tmp_path / "on")) == 0
    assert has_bm25_index(tmp_path / "on")
    assert len(_bm25_files(tmp_path / "on")) == 5
    assert _index(str(docs), "--out", str(tmp_path / "off"), "--no-bm25") == 0
    assert not has_bm25_index(tmp_path / "off")
    assert _manifest(tmp_path / "off")["bm25"] is False
    assert _bm25_files(tmp_path / "off") == set()
    assert "BM25" not in capsys.readouterr().out  # a new index: nothing changed


@pytest.mark.parametrize("first", [[], ["--no-bm25"]])
def test_a_rerun_keeps_the_index_s_bm25_setting_and_loads_no_model(
    docs: Path,
    tmp_path: Path,
    loads: list[str],
    capsys: pytest.CaptureFixture[str],
    first: list[str],
) -> None:
    from langchain_ce_rerank.store import has_bm25_index

    out = tmp_path / "ix"
    assert _index(str(docs), "--out", str(out), *first) == 0
    had = has_bm25_index(out)
    assert had is (not first)
    (docs / "c.md").write_text("beta gamma", encoding="utf-8")
    assert _index(str(docs), "--out", str(out)) == 0  # a change, no flag
    assert has_bm25_index(out) is had
    assert len(loads) == 2
    again = ["--no-bm25"] if first else ["--bm25"]  # what it has already
    assert _index(str(docs), "--out", str(out), *again) == 0
    assert has_bm25_index(out) is had
    assert len(loads) == 2  # nothing changed: no model loaded
    assert "BM25" not in capsys.readouterr().out


def test_no_bm25_on_an_existing_index_removes_it_without_re_embedding(
    docs: Path, tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_ce_rerank.store import has_bm25_index, open_index

    out = tmp_path / "ix"
    assert _index(str(docs), "--out", str(out)) == 0
    capsys.readouterr()
    assert _index(str(docs), "--out", str(out), "--no-bm25") == 0
    said = capsys.readouterr().out
    assert "0 chunks added, 2 unchanged, 0 removed (2 in the index)" in said
    assert "Removed its BM25 keyword index (--no-bm25)" in said
    assert "--first-stage dense" in said
    assert not has_bm25_index(out)
    assert _bm25_files(out) == set()
    store = open_index(out, AxisEmbeddings(WORDS))
    assert sorted(d.page_content for d in store.get_by_ids(store.ids)) == [
        "alpha beta",
        "gamma",
    ]


def test_bm25_on_an_index_without_it_builds_it(
    docs: Path, tmp_path: Path, loads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_ce_rerank.store import has_bm25_index, open_index

    out = tmp_path / "ix"
    assert _index(str(docs), "--out", str(out), "--no-bm25") == 0
    capsys.readouterr()
    assert _index(str(docs), "--out", str(out), "--bm25") == 0
    said = capsys.readouterr().out
    assert "0 chunks added, 2 unchanged" in said
    assert "Built its BM25 keyword index (--bm25)" in said
    assert has_bm25_index(out)
    assert len(_bm25_files(out)) == 5
    store = open_index(out, AxisEmbeddings(WORDS))
    hits = store.as_retriever(search_type="bm25", k=2).invoke("gamma")
    assert [d.page_content for d in hits] == ["gamma"]


def test_index_help_explains_the_bm25_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--bm25, --no-bm25" in text
    assert "an existing index keeps its own" in text
