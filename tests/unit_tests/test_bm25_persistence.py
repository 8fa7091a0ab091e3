"""The BM25 index in saved folders: files, settings, tampering, older folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from doubles import AxisEmbeddings

from langchain_ce_rerank import BM25Settings, FaissVectorStore, StoreLoadError
from langchain_ce_rerank.store import bm25 as bm25_module
from langchain_ce_rerank.store.manifest import with_integrity

WORDS = ["red", "green", "blue", "cat"]
ROLES = ("bm25_data", "bm25_indices", "bm25_indptr", "bm25_vocab", "bm25_params")


@pytest.fixture
def embedding() -> AxisEmbeddings:
    return AxisEmbeddings(WORDS)


@pytest.fixture
def store(embedding: AxisEmbeddings) -> FaissVectorStore:
    store = FaissVectorStore(embedding, bm25=BM25Settings(language="german"))
    store.add_texts(
        ["die rote Katze", "der grüne Hund", "Fehler E0425", "rote Katzen"],
        [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}],
        ids=["a", "b", "c", "d"],
    )
    return store


def _manifest(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return manifest


def _view(pairs: list[tuple[Any, float]]) -> list[tuple[str, float]]:
    return [(doc.id, round(score, 5)) for doc, score in pairs]


def test_save_writes_the_index_and_settings_and_load_searches_alike(
    store: FaissVectorStore,
    embedding: AxisEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.delete(["b"])  # the save rebuilds the stale index first
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    assert manifest["bm25"] == {
        "language": "german",
        "stopwords": True,
        "stemming": False,
    }
    for role in ROLES:
        entry = manifest["files"][role]
        assert (tmp_path / entry["name"]).stat().st_size == entry["bytes"]

    def no_rebuild(*args: object) -> None:
        raise AssertionError("the loaded index was rebuilt")

    monkeypatch.setattr(bm25_module.BM25Index, "from_ids", no_rebuild)
    loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert loaded.bm25_settings == BM25Settings(language="german")
    for query in ("rote Katze", "E0425", "der die"):
        assert _view(loaded.bm25_search_with_score(query, k=5)) == _view(
            store.bm25_search_with_score(query, k=5)
        )
    assert loaded.bm25_search_with_score("Hund") == []


def test_an_empty_store_saves_settings_and_no_index(
    embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    FaissVectorStore(embedding, bm25=BM25Settings(stopwords=False)).save_local(tmp_path)
    manifest = _manifest(tmp_path)
    assert not set(ROLES) & set(manifest["files"])
    loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert loaded.bm25_settings == BM25Settings(stopwords=False)
    loaded.add_texts(["the cat"], ids=["x"])
    assert [d.id for d, _ in loaded.bm25_search_with_score("the")] == ["x"]


@pytest.mark.parametrize("role", ROLES)
def test_a_tampered_or_truncated_bm25_file_is_refused_by_name(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path, role: str
) -> None:
    store.save_local(tmp_path)
    path = tmp_path / _manifest(tmp_path)["files"][role]["name"]
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(StoreLoadError, match="modified since it was saved") as caught:
        FaissVectorStore.load_local(tmp_path, embedding)
    assert str(path) in str(caught.value)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreLoadError, match="truncated") as caught:
        FaissVectorStore.load_local(tmp_path, embedding)
    assert str(path) in str(caught.value)
    path.unlink()
    with pytest.raises(StoreLoadError, match="missing") as caught:
        FaissVectorStore.load_local(tmp_path, embedding)
    assert path.name in str(caught.value)


def test_edited_bm25_settings_are_refused(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    manifest["bm25"]["stemming"] = True
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreLoadError, match="'bm25' changed"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_a_folder_saved_before_bm25_loads_and_builds_it_on_first_use(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    # What the previous release wrote: no bm25 field, no bm25 files.
    old = {k: v for k, v in manifest.items() if k not in ("bm25", "integrity")}
    old["files"] = {k: v for k, v in old["files"].items() if k not in ROLES}
    (tmp_path / "manifest.json").write_text(json.dumps(with_integrity(old)))
    loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert loaded.bm25_settings == BM25Settings()  # the defaults
    assert [d.id for d, _ in loaded.bm25_search_with_score("E0425")] == ["c"]
    loaded.save_local(tmp_path)  # upgrades the folder
    assert set(ROLES) <= set(_manifest(tmp_path)["files"])


def test_bm25_files_are_not_pickles_and_old_generations_are_collected(
    store: FaissVectorStore, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    first = {_manifest(tmp_path)["files"][r]["name"] for r in ROLES}
    store.add_texts(["neue Katze"], ids=["e"])
    store.save_local(tmp_path)
    store.add_texts(["noch eine"], ids=["f"])
    store.save_local(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert not first & names
    for path in tmp_path.iterdir():
        if path.name.startswith("bm25_"):
            assert not path.read_bytes().startswith(b"\x80"), path  # pickle magic
