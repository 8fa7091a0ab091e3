"""One way in to a saved index: `open_index`, keyed on the folder's manifest."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from doubles import AxisEmbeddings
from langchain_core.documents import Document

from langchain_ce_rerank import FaissRetriever, StoreLoadError
from langchain_ce_rerank.store import (
    FaissVectorStore,
    IndexStore,
    new_index,
    open_index,
    opening,
    read_index_manifest,
)

WORDS = ["red", "green", "blue"]


def _saved(folder: Path) -> IndexStore:
    index = new_index(AxisEmbeddings(WORDS), distance_strategy="l2")
    index.add_documents(
        [Document(page_content="red", id="r"), Document(page_content="blue", id="b")]
    )
    index.save_local(folder)
    return index


def test_a_saved_index_opens_as_it_was(tmp_path: Path) -> None:
    saved = _saved(tmp_path / "ix")
    opened = open_index(tmp_path / "ix", AxisEmbeddings(WORDS))
    assert isinstance(opened, FaissVectorStore)
    assert opened.ids == saved.ids == ["r", "b"]
    assert opened.distance_strategy == "l2"  # the manifest's settings, not defaults
    retriever = opened.as_retriever(k=1)
    assert isinstance(retriever, FaissRetriever)
    assert [d.id for d in retriever.invoke("blue")] == ["b"]
    manifest = read_index_manifest(tmp_path / "ix")
    assert (manifest["count"], manifest["distance_strategy"]) == (2, "l2")


def test_the_manifest_format_picks_the_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _saved(tmp_path / "ix")
    format_ = json.loads((tmp_path / "ix" / "manifest.json").read_text())["format"]
    opened: list[Path] = []

    def loader(folder: Path, embedding: object) -> IndexStore:
        opened.append(folder)
        return new_index(AxisEmbeddings(WORDS))

    monkeypatch.setattr(opening, "_OPENERS", {format_: loader})
    open_index(tmp_path / "ix")
    assert opened == [tmp_path / "ix"]
    monkeypatch.setattr(opening, "_OPENERS", {})
    with pytest.raises(StoreLoadError, match=f"no loader for index format '{format_}'"):
        open_index(tmp_path / "ix")


def test_a_folder_without_an_index_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_index(tmp_path / "nowhere", AxisEmbeddings(WORDS))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing"):
        read_index_manifest(tmp_path / "empty")


@pytest.mark.parametrize("obj", [opening, IndexStore])
def test_docstring_examples_run(
    obj: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", obj.__doc__ or "", re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    exec("\n".join(textwrap.dedent(b) for b in blocks), {})
