from __future__ import annotations

import json
import logging
import os
import pickle
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from doubles import AxisEmbeddings
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import FaissVectorStore, StoreLoadError
from langchain_ce_rerank.store import persistence

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


def _manifest(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return manifest


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


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
    assert manifest["format_version"] == 2
    assert manifest["dimension"] == len(WORDS) + 1
    assert manifest["distance_strategy"] == "cosine"
    assert manifest["count"] == 3
    assert "embedding_model" in manifest


def test_resaving_keeps_only_the_generation_it_replaced(
    store: FaissVectorStore, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    first = {_data_file(tmp_path, "index").name, _data_file(tmp_path, "docstore").name}
    store.add_texts(["cat"])
    store.save_local(tmp_path)
    second = {_data_file(tmp_path, "index").name, _data_file(tmp_path, "docstore").name}
    # A reader that read the first manifest just before the swap still finds
    # its files; the save after that removes them.
    assert first | second <= {p.name for p in tmp_path.iterdir()}
    store.add_texts(["red"])
    store.save_local(tmp_path)
    third = {_data_file(tmp_path, "index").name, _data_file(tmp_path, "docstore").name}
    data = {
        p.name
        for p in tmp_path.iterdir()
        if p.name.split(".")[0] in ("index", "docstore")
    }
    assert data == second | third


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
    for source in package.rglob("*.py"):
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
    manifest = _manifest(tmp_path)
    manifest["format_version"] = 99
    _write_manifest(tmp_path, manifest)
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
    real_write = persistence._write_atomic

    def crash_before_manifest(folder: Path, name: str, data: bytes) -> None:
        if name == persistence.MANIFEST:
            raise OSError("disk full")
        real_write(folder, name, data)

    monkeypatch.setattr(persistence, "_write_atomic", crash_before_manifest)
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

    monkeypatch.setattr(persistence.os, "fsync", crash)
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


# -- the manifest is tamper-evident ---------------------------------------------


def test_an_edited_distance_strategy_is_refused_by_name(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    manifest["distance_strategy"] = "l2"  # would change every retrieval_score
    _write_manifest(tmp_path, manifest)
    with pytest.raises(StoreLoadError) as caught:
        FaissVectorStore.load_local(tmp_path, embedding)
    message = str(caught.value)
    assert "manifest.json: edited after save_local wrote it" in message
    assert "field(s) 'distance_strategy' changed" in message
    assert "save_local" in message.split("changed.", 1)[1]  # how to fix it
    with pytest.raises(StoreLoadError, match="'distance_strategy'"):
        FaissVectorStore.read_manifest(tmp_path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dimension", 6),
        ("index_factory", "HNSW32"),
        ("search_params", {"nprobe": 64, "ef_search": None}),
        ("count", 2),
        ("embedding_model", "sentence-transformers/all-mpnet-base-v2"),
        ("library_version", "0.0.1"),
    ],
)
def test_every_edited_field_is_named(
    store: FaissVectorStore,
    embedding: AxisEmbeddings,
    tmp_path: Path,
    field: str,
    value: object,
) -> None:
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    manifest[field] = value
    _write_manifest(tmp_path, manifest)
    with pytest.raises(StoreLoadError, match=rf"field\(s\) '{field}' changed"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_repointing_a_data_file_is_caught_even_with_matching_checksums(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    old = _manifest(tmp_path)
    store.delete(["bc"])
    store.save_local(tmp_path)  # the first generation's files are still there
    manifest = _manifest(tmp_path)
    manifest["files"]["docstore"] = old["files"]["docstore"]
    manifest["count"] = old["count"]
    _write_manifest(tmp_path, manifest)
    with pytest.raises(StoreLoadError, match=r"field\(s\) 'count', 'files' changed"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_added_and_removed_fields_are_named(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    del manifest["embedding_model"]
    manifest["normalize"] = False
    _write_manifest(tmp_path, manifest)
    with pytest.raises(
        StoreLoadError, match=r"field\(s\) 'embedding_model', 'normalize' changed"
    ):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_an_edited_digest_asks_to_check_the_behaviour_fields(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    manifest["integrity"]["manifest_sha256"] = "0" * 64
    _write_manifest(tmp_path, manifest)
    with pytest.raises(StoreLoadError, match=r"no longer matches.*distance_strategy"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_a_version_2_manifest_without_its_digest_is_refused(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    del manifest["integrity"]
    _write_manifest(tmp_path, manifest)
    with pytest.raises(StoreLoadError, match=r"has no integrity\.manifest_sha256"):
        FaissVectorStore.load_local(tmp_path, embedding)


def test_reformatting_the_manifest_is_not_an_edit(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    manifest = _manifest(tmp_path)
    reordered = dict(reversed(list(manifest.items())))
    (tmp_path / "manifest.json").write_text(json.dumps(reordered, indent=7))
    assert FaissVectorStore.load_local(tmp_path, embedding).ids == store.ids


def test_format_version_1_stores_load_with_a_warning_and_upgrade_on_save(
    store: FaissVectorStore,
    embedding: AxisEmbeddings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store.save_local(tmp_path)
    saved = _manifest(tmp_path)
    # Exactly what release 0.x (format_version 1) wrote: no integrity block.
    v1_fields = (
        "format", "library_version", "dimension", "distance_strategy",
        "index_factory", "search_params", "count", "embedding_model", "files",
    )  # fmt: skip
    v1 = {key: saved[key] for key in v1_fields} | {"format_version": 1}
    _write_manifest(tmp_path, v1)
    with caplog.at_level(
        logging.WARNING, logger="langchain_ce_rerank.store.persistence"
    ):
        loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert loaded.get_by_ids(loaded.ids) == store.get_by_ids(store.ids)
    # Only this module's records: bm25s logs at DEBUG when the save builds BM25.
    (record,) = [r for r in caplog.records if r.name.startswith("langchain_ce")]
    assert "format_version 1" in record.getMessage()
    assert "save_local" in record.getMessage()
    loaded.save_local(tmp_path)
    assert _manifest(tmp_path)["format_version"] == 2
    assert "integrity" in _manifest(tmp_path)
    caplog.clear()
    FaissVectorStore.load_local(tmp_path, embedding)
    assert caplog.records == []


# -- files are ordinary files ---------------------------------------------------


@pytest.fixture
def restore_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
@pytest.mark.usefixtures("restore_umask")
def test_saved_files_follow_the_umask(
    store: FaissVectorStore, tmp_path: Path, umask: int, mode: int
) -> None:
    os.umask(umask)
    store.save_local(tmp_path / "idx")
    store.add_texts(["cat"])
    store.save_local(tmp_path / "idx")  # replaced files keep the mode too
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "idx").iterdir()
    }
    assert set(modes.values()) == {mode}, modes


def test_only_stale_temporary_files_are_removed(
    store: FaissVectorStore, embedding: AxisEmbeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    in_flight = tmp_path / ".tmp-4242-another-saver"
    abandoned = tmp_path / ".tmp-4343-crashed-saver"
    in_flight.write_bytes(b"half an index")
    abandoned.write_bytes(b"half an index")
    old = time.time() - persistence.STALE_TMP_SECONDS - 60
    os.utime(abandoned, (old, old))
    store.save_local(tmp_path)
    assert in_flight.exists()
    assert not abandoned.exists()
    assert FaissVectorStore.load_local(tmp_path, embedding).ids == store.ids
