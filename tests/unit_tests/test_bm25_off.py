"""A store without a keyword index: `bm25=False`, `set_bm25`, saving and loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from doubles import AxisEmbeddings
from pydantic import ValidationError

from langchain_ce_rerank import BM25Settings, FaissVectorStore, StoreLoadError
from langchain_ce_rerank.store import bm25 as bm25_module
from langchain_ce_rerank.store import has_bm25_index, open_index
from langchain_ce_rerank.store.manifest import with_integrity

WORDS = ["red", "green", "blue", "cat"]
ROLES = ("bm25_data", "bm25_indices", "bm25_indptr", "bm25_vocab", "bm25_params")
TEXTS = ["red cat", "green", "error E0425 in blue code"]
IDS = ["a", "b", "c"]


@pytest.fixture
def embedding() -> AxisEmbeddings:
    return AxisEmbeddings(WORDS)


@pytest.fixture
def no_tokenizing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any BM25 tokenizing or index build fails the test."""

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("BM25 work was done for a store without BM25")

    monkeypatch.setattr(bm25_module.BM25Settings, "tokenize", refuse)
    monkeypatch.setattr(bm25_module.TermCache, "build", refuse)


def _plain(embedding: AxisEmbeddings) -> FaissVectorStore:
    return FaissVectorStore.from_texts(TEXTS, embedding, ids=IDS, bm25=False)


def _manifest(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return manifest


def _says_how_to_add_it(message: str) -> None:
    assert "bm25=False" in message
    assert "store.set_bm25(True)" in message
    assert "load_local(folder, bm25=True)" in message
    assert "--bm25" in message
    assert "search_type='similarity'" in message


def test_the_default_keeps_a_keyword_index(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding)
    assert store.bm25_enabled
    assert store.bm25_settings == BM25Settings()
    assert FaissVectorStore(embedding, bm25=True).bm25_settings == BM25Settings()


def test_no_keyword_index_builds_nothing_and_dense_search_works(
    embedding: AxisEmbeddings, no_tokenizing: None, tmp_path: Path
) -> None:
    store = _plain(embedding)
    assert not store.bm25_enabled
    assert store.bm25_settings is None
    store.add_texts(["blue"], ids=["d"])
    store.delete(["b"])
    assert store.similarity_search("red cat", k=1)[0].id == "a"
    assert store.as_retriever(k=1).invoke("red cat")[0].id == "a"
    store.save_local(tmp_path)  # no BM25 index is built to be saved
    assert "bm25=True" in repr(FaissVectorStore(embedding))
    assert "bm25=False" in repr(store)


def test_keyword_searches_say_the_store_has_no_bm25_and_how_to_add_it(
    embedding: AxisEmbeddings,
) -> None:
    store = _plain(embedding)
    with pytest.raises(ValueError, match="bm25_search_with_score needs") as caught:
        store.bm25_search_with_score("E0425")
    _says_how_to_add_it(str(caught.value))
    for search_type in ("bm25", "hybrid"):
        with pytest.raises(ValidationError, match=f"search_type='{search_type}'"):
            store.as_retriever(search_type=search_type)
        retriever = store.as_retriever(k=2)
        with pytest.raises(ValueError, match=f"search_type='{search_type}'") as err:
            retriever.invoke("E0425", search_type=search_type)
        _says_how_to_add_it(str(err.value))
        with pytest.raises(ValueError, match="needs the store's BM25"):
            retriever.batch(["E0425", "red"], search_type=search_type)


def test_a_retriever_made_before_the_index_was_dropped_says_so(
    embedding: AxisEmbeddings,
) -> None:
    store = FaissVectorStore.from_texts(TEXTS, embedding, ids=IDS)
    hybrid = store.as_retriever(search_type="hybrid", k=2)
    assert hybrid.invoke("E0425")[0].id == "c"
    store.set_bm25(False)
    with pytest.raises(ValueError, match="search_type='hybrid' needs"):
        hybrid.invoke("E0425")


def test_set_bm25_turns_the_index_on_and_off(embedding: AxisEmbeddings) -> None:
    store = _plain(embedding)
    store.set_bm25(True)
    assert store.bm25_settings == BM25Settings()
    assert [d.id for d, _ in store.bm25_search_with_score("E0425")] == ["c"]
    hybrid = store.as_retriever(search_type="hybrid", k=1)
    assert hybrid.invoke("E0425")[0].metadata["bm25_rank"] == 1
    store.set_bm25(False)
    with pytest.raises(ValueError, match="bm25=False"):
        store.bm25_search_with_score("E0425")


def test_set_bm25_keeps_or_changes_the_settings(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore.from_texts(
        ["the red cat"], embedding, ids=["a"], bm25=BM25Settings(stopwords=False)
    )
    assert [d.id for d, _ in store.bm25_search_with_score("the")] == ["a"]
    store.set_bm25(True)  # on already: its settings stay
    assert store.bm25_settings == BM25Settings(stopwords=False)
    store.set_bm25(BM25Settings())  # new settings: re-tokenized
    assert store.bm25_search_with_score("the") == []  # "the" is a stopword now
    with pytest.raises(TypeError, match="bm25=False for no keyword index"):
        store.set_bm25("english")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bm25 must be a BM25Settings, True or False"):
        FaissVectorStore(embedding, bm25={"language": "german"})  # type: ignore[arg-type]


def test_save_records_no_keyword_index_and_load_keeps_it_off(
    embedding: AxisEmbeddings, tmp_path: Path, no_tokenizing: None
) -> None:
    _plain(embedding).save_local(tmp_path)
    manifest = _manifest(tmp_path)
    assert manifest["bm25"] is False
    assert not set(ROLES) & set(manifest["files"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("bm25_")]
    assert not has_bm25_index(tmp_path)
    loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert not loaded.bm25_enabled
    with pytest.raises(ValueError, match="bm25=False"):
        loaded.bm25_search_with_score("E0425")
    loaded.add_texts(["cat"], ids=["d"])
    loaded.save_local(tmp_path)  # saving again keeps it off
    assert _manifest(tmp_path)["bm25"] is False
    reopened = open_index(tmp_path, embedding)
    assert [d.id for d in reopened.as_retriever(k=1).invoke("cat")] == ["d"]
    with pytest.raises(ValueError, match="bm25=False"):
        open_index(tmp_path, embedding).as_retriever(search_type="bm25")


def test_load_local_with_bm25_true_adds_the_index_and_save_keeps_it(
    embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    _plain(embedding).save_local(tmp_path)
    loaded = open_index(tmp_path, embedding, bm25=True)
    assert isinstance(loaded, FaissVectorStore)
    assert [d.id for d, _ in loaded.bm25_search_with_score("E0425")] == ["c"]
    loaded.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    assert manifest["bm25"] == BM25Settings().model_dump(mode="json")
    assert set(ROLES) <= set(manifest["files"])
    assert has_bm25_index(tmp_path)
    again = FaissVectorStore.load_local(tmp_path, embedding)
    assert [d.id for d, _ in again.bm25_search_with_score("E0425")] == ["c"]


def test_load_local_with_bm25_false_drops_a_saved_index(
    embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    FaissVectorStore.from_texts(TEXTS, embedding, ids=IDS).save_local(tmp_path)
    assert has_bm25_index(tmp_path)
    loaded = FaissVectorStore.load_local(tmp_path, embedding, bm25=False)
    assert not loaded.bm25_enabled
    loaded.save_local(tmp_path)
    assert _manifest(tmp_path)["bm25"] is False
    assert not set(ROLES) & set(_manifest(tmp_path)["files"])


def test_a_folder_saved_before_bm25_keeps_it_on(
    embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    FaissVectorStore.from_texts(TEXTS, embedding, ids=IDS).save_local(tmp_path)
    manifest = _manifest(tmp_path)
    old = {k: v for k, v in manifest.items() if k not in ("bm25", "integrity")}
    old["files"] = {k: v for k, v in old["files"].items() if k not in ROLES}
    (tmp_path / "manifest.json").write_text(json.dumps(with_integrity(old)))
    assert has_bm25_index(tmp_path)
    loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert loaded.bm25_enabled  # built on first use
    assert [d.id for d, _ in loaded.bm25_search_with_score("E0425")] == ["c"]


def test_a_manifest_without_bm25_that_lists_bm25_files_is_refused(
    embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    FaissVectorStore.from_texts(TEXTS, embedding, ids=IDS).save_local(tmp_path)
    manifest = _manifest(tmp_path)
    content = {k: v for k, v in manifest.items() if k != "integrity"}
    content["bm25"] = False
    (tmp_path / "manifest.json").write_text(json.dumps(with_integrity(content)))
    with pytest.raises(StoreLoadError, match="bm25 is false, yet it lists BM25"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_the_set_bm25_example_runs() -> None:
    import re
    import textwrap

    blocks = re.findall(
        r"```python\n(.*?)```", FaissVectorStore.set_bm25.__doc__ or "", re.S
    )
    assert blocks
    exec(textwrap.dedent(blocks[0]), {})
