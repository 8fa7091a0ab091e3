from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from doubles import AxisEmbeddings
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import FaissVectorStore, StoreLoadError, _persistence

WORDS = ["red", "green", "blue", "cat"]


@pytest.fixture
def embedding() -> AxisEmbeddings:
    return AxisEmbeddings(WORDS)


@pytest.fixture
def store(embedding: AxisEmbeddings) -> FaissVectorStore:
    store = FaissVectorStore(embedding)
    store.add_texts(
        ["red", "green 🌿 ünïcode", "blue cat"],
        [{"src": "a.md", "page": 1}, {"nested": {"k": [1, 2]}}, {}],
        ids=["r", "g", "bc"],
    )
    return store


def _data_file(folder: Path, role: str) -> Path:
    manifest = json.loads((folder / "manifest.json").read_text())
    return folder / manifest["files"][role]["name"]


def test_round_trip_keeps_documents_ids_scores_and_settings(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.delete(["bc"])
    store.add_texts(["cat"], ids=["c"])  # ids are not contiguous any more
    store.save_local(tmp_path / "idx")
    loaded = FaissVectorStore.load_local(tmp_path / "idx", embedding)
    assert loaded.ids == store.ids
    assert loaded.get_by_ids(store.ids) == store.get_by_ids(store.ids)
    assert loaded.similarity_search_with_score("green", k=3) == (
        store.similarity_search_with_score("green", k=3)
    )
    loaded.add_texts(["blue"], ids=["b"])  # new internal ids do not collide
    assert loaded.similarity_search("blue", k=1)[0].id == "b"
    assert loaded.similarity_search("cat", k=1)[0].id == "c"


def test_distance_strategy_is_restored(
    embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store = FaissVectorStore.from_texts(["red"], embedding, distance_strategy="l2")
    store.save_local(tmp_path)
    assert FaissVectorStore.load_local(tmp_path, embedding).distance_strategy == "l2"


def test_empty_store_round_trips(embedding: AxisEmbeddings, tmp_path: Path) -> None:
    FaissVectorStore(embedding).save_local(tmp_path)
    loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert loaded.similarity_search("red", k=1) == []


def test_manifest_describes_the_index(store: FaissVectorStore, tmp_path: Path) -> None:
    store.save_local(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["dimension"] == len(WORDS) + 1
    assert manifest["distance_strategy"] == "cosine"
    assert manifest["count"] == 3
    assert "embedding_model" in manifest


def test_resaving_removes_the_previous_data_files(
    store: FaissVectorStore, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    store.add_texts(["cat"])
    store.save_local(tmp_path)
    assert sorted(p.name.split(".")[0] for p in tmp_path.iterdir()) == [
        "docstore",
        "index",
        "manifest",
    ]


def test_loading_never_unpickles(
    store: FaissVectorStore,
    embedding: AxisEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.save_local(tmp_path)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    assert FaissVectorStore.load_local(tmp_path, embedding).ids == store.ids
    for path in tmp_path.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path} looks pickled"


def test_no_module_of_the_package_imports_pickle() -> None:
    import langchain_ce_rerank

    package = Path(langchain_ce_rerank.__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text()
        assert "import pickle" not in text, source
        assert "cloudpickle" not in text, source


def test_missing_folder(embedding: AxisEmbeddings, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FaissVectorStore.load_local(tmp_path / "nope", embedding)


def test_folder_without_manifest(embedding: AxisEmbeddings, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_truncated_index_names_the_file(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    index_file = _data_file(tmp_path, "index")
    index_file.write_bytes(index_file.read_bytes()[:100])
    with pytest.raises(StoreLoadError, match=rf"{index_file.name}.*truncated"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_tampered_docstore_names_the_file(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    docstore = _data_file(tmp_path, "docstore")
    docstore.write_bytes(docstore.read_bytes().replace(b"a.md", b"b.md"))
    with pytest.raises(StoreLoadError, match=rf"{docstore.name}.*SHA-256"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_missing_data_file_names_it(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    docstore = _data_file(tmp_path, "docstore")
    docstore.unlink()
    with pytest.raises(StoreLoadError, match=rf"{docstore.name}.*missing"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_damaged_manifest(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreLoadError, match=r"manifest\.json.*not valid JSON"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_future_format_version_is_refused(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreLoadError, match="format_version 99 is not supported"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_dimension_mismatch_with_the_embedding(
    store: FaissVectorStore, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    with pytest.raises(StoreLoadError, match=r"5-dimensional.*7-dimensional"):
        FaissVectorStore.load_local(tmp_path, DeterministicFakeEmbedding(size=7))


def test_failed_save_leaves_the_previous_index_intact(
    store: FaissVectorStore,
    embedding: AxisEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.save_local(tmp_path)
    before = store.get_by_ids(store.ids)
    store.add_texts(["cat"] * 5)
    real_write = _persistence._write_atomic

    def crash_before_manifest(folder: Path, name: str, data: bytes) -> None:
        if name == _persistence.MANIFEST:
            raise OSError("disk full")
        real_write(folder, name, data)

    monkeypatch.setattr(_persistence, "_write_atomic", crash_before_manifest)
    with pytest.raises(OSError, match="disk full"):
        store.save_local(tmp_path)
    monkeypatch.undo()
    loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert loaded.get_by_ids(loaded.ids) == before


def test_crash_while_writing_a_file_leaves_no_partial_file(
    store: FaissVectorStore,
    embedding: AxisEmbeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.save_local(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    store.add_texts(["green"])

    def crash(fd: int) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(_persistence.os, "fsync", crash)
    with pytest.raises(OSError, match="power cut"):
        store.save_local(tmp_path)
    monkeypatch.undo()
    assert {p.name for p in tmp_path.iterdir()} == names
    assert len(FaissVectorStore.load_local(tmp_path, embedding).ids) == 3


def test_metadata_that_json_cannot_hold_is_refused_by_name(
    embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store = FaissVectorStore(embedding)
    store.add_texts(["red"], [{"when": object()}], ids=["doc-7"])
    with pytest.raises(TypeError, match=r"'doc-7'.*not JSON-serializable"):
        store.save_local(tmp_path)
    store2 = FaissVectorStore(embedding)
    store2.add_texts(["red"], [{"pair": (1, 2)}], ids=["doc-8"])
    with pytest.raises(TypeError, match=r"'doc-8'.*would change"):
        store2.save_local(tmp_path)
    assert not (tmp_path / "manifest.json").exists()
