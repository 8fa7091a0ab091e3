from __future__ import annotations

import json
from pathlib import Path

import pytest
from doubles import AxisEmbeddings

from langchain_ce_rerank import FaissVectorStore
from langchain_ce_rerank.ingest import load_corpus, sync_store

WORDS = ["alpha", "beta", "gamma", "delta"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("alpha " * 300, encoding="utf-8")  # several chunks
    (root / "sub" / "b.txt").write_text("beta gamma", encoding="utf-8")
    rows = [
        {
            "id": "r1",
            "text": "delta one",
            "metadata": {"topic": "x", "source": "theirs"},
        },
        {"id": 2, "text": "delta two"},
    ]
    (root / "rows.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n{broken\n" + '{"id": "r3"}\n',
        encoding="utf-8",
    )
    (root / "latin1.txt").write_bytes("café".encode("latin-1"))
    (root / "ignored.pdf").write_bytes(b"%PDF")
    return root


def test_reads_supported_files_and_reports_skips(folder: Path) -> None:
    corpus = load_corpus([folder], chunk_size=200, chunk_overlap=20)
    sources = {Path(d.metadata["source"]).name for d in corpus.documents}
    assert sources == {"a.md", "b.txt", "rows.jsonl"}
    assert (
        len([d for d in corpus.documents if d.metadata["source"].endswith("a.md")]) > 1
    )
    reasons = dict(corpus.skipped)
    assert "not UTF-8" in reasons[str(folder / "latin1.txt")]
    assert "not valid JSON" in reasons[f"{folder / 'rows.jsonl'}:3"]
    assert "needs a string 'text'" in reasons[f"{folder / 'rows.jsonl'}:4"]
    assert not any("ignored.pdf" in where for where in reasons)  # not a text type


def test_chunk_metadata_and_jsonl_rows(folder: Path) -> None:
    corpus = load_corpus([folder], chunk_size=200, chunk_overlap=20)
    row = next(d for d in corpus.documents if d.page_content == "delta one")
    assert row.metadata["source"] == str(folder / "rows.jsonl")  # ours wins
    assert row.metadata["doc_id"] == "r1"
    assert row.metadata["topic"] == "x"
    assert row.metadata["chunk"] == 0
    assert row.metadata["start_index"] == 0
    numbered = next(d for d in corpus.documents if d.page_content == "delta two")
    assert numbered.metadata["doc_id"] == "2"


def test_ids_are_stable_and_content_addressed(folder: Path) -> None:
    first = [d.id for d in load_corpus([folder]).documents]
    assert first == [d.id for d in load_corpus([folder]).documents]
    assert len(set(first)) == len(first)
    (folder / "sub" / "b.txt").write_text("beta changed", encoding="utf-8")
    second = [d.id for d in load_corpus([folder]).documents]
    assert len(set(first) ^ set(second)) == 2  # one old chunk out, one new in


def test_single_file_and_missing_path(folder: Path) -> None:
    corpus = load_corpus([folder / "sub" / "b.txt"])
    assert [d.page_content for d in corpus.documents] == ["beta gamma"]
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_corpus([folder / "nope"])


def test_bad_chunk_settings() -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        load_corpus([], chunk_size=100, chunk_overlap=100)


def test_sync_adds_updates_and_removes(folder: Path, tmp_path: Path) -> None:
    embedding = AxisEmbeddings(WORDS)
    store = FaissVectorStore(embedding)
    outside = store.add_texts(["gamma elsewhere"], [{"source": str(tmp_path / "x.md")}])
    corpus = load_corpus([folder], chunk_size=200, chunk_overlap=20)
    report = sync_store(store, corpus, [folder])
    assert (report.added, report.unchanged, report.removed) == (
        len(corpus.documents),
        0,
        0,
    )

    embedding.calls = 0
    again = sync_store(
        store, load_corpus([folder], chunk_size=200, chunk_overlap=20), [folder]
    )
    assert (again.added, again.removed) == (0, 0)
    assert embedding.calls == 0  # nothing re-embedded

    (folder / "sub" / "b.txt").write_text("beta changed", encoding="utf-8")
    (folder / "a.md").unlink()
    corpus = load_corpus([folder], chunk_size=200, chunk_overlap=20)
    report = sync_store(store, corpus, [folder])
    assert report.added == 1
    texts = {d.page_content for d in store.get_by_ids(store.ids)}
    assert "beta changed" in texts
    assert "beta gamma" not in texts
    assert not any(t.startswith("alpha") for t in texts)
    assert store.get_by_ids(outside)  # outside the indexed paths: untouched
    assert len(store.ids) == len(corpus.documents) + 1


def test_sync_keeps_chunks_of_files_that_became_unreadable(folder: Path) -> None:
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    sync_store(store, load_corpus([folder]), [folder])
    before = len(store.ids)
    (folder / "sub" / "b.txt").write_bytes(b"\xff\xfe broken")
    corpus = load_corpus([folder])
    report = sync_store(store, corpus, [folder])
    assert report.removed == 0
    assert len(store.ids) == before


def test_beir_corpus_rows_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "d1", "title": "Backups", "text": "Tar the volume."}\n')
    [doc] = load_corpus([path]).documents
    assert doc.metadata["doc_id"] == "d1"
    assert doc.metadata["title"] == "Backups"
