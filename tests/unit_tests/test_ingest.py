from __future__ import annotations

import json
from pathlib import Path

import pytest
from doubles import AxisEmbeddings

from langchain_ce_rerank import FaissVectorStore
from langchain_ce_rerank.ingest import (
    BINARY,
    SNIFF_BYTES,
    load_corpus,
    plan_sync,
    sync_store,
)

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
    (root / "notes.pdf").write_bytes(b"%PDF-1.7\n\x00\x01\x02 stream")
    (root / "LICENSE").write_text("no extension", encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("hidden: not searched", encoding="utf-8")
    return root


def test_reads_text_files_and_reports_skips(folder: Path) -> None:
    corpus = load_corpus([folder], chunk_size=200, chunk_overlap=20)
    sources = {Path(d.metadata["source"]).name for d in corpus.documents}
    assert sources == {"a.md", "b.txt", "rows.jsonl", "LICENSE"}
    assert (
        len([d for d in corpus.documents if d.metadata["source"].endswith("a.md")]) > 1
    )
    reasons = dict(corpus.skipped)
    assert "not UTF-8" in reasons[str(folder / "latin1.txt")]
    assert "not valid JSON" in reasons[f"{folder / 'rows.jsonl'}:3"]
    assert "needs a string 'text'" in reasons[f"{folder / 'rows.jsonl'}:4"]
    assert reasons[str(folder / "notes.pdf")] == BINARY
    assert not any(".git" in where for where in reasons)  # hidden: not searched


def test_text_files_are_read_whatever_their_name(tmp_path: Path) -> None:
    # As Debian installs them: /usr/share/doc/PACKAGE/copyright, no extension.
    for package in ("adduser", "apt"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "copyright").write_text(
            f"Format: https://www.debian.org/doc/\nUpstream-Name: {package}\n"
        )
    (tmp_path / "script.py").write_text("print('hi')\n")
    corpus = load_corpus([tmp_path])
    names = sorted(Path(s).relative_to(tmp_path).as_posix() for s in corpus.files)
    assert names == ["adduser/copyright", "apt/copyright", "script.py"]
    assert corpus.skipped == []


def test_binary_is_told_from_text_by_nul_bytes_and_utf8(tmp_path: Path) -> None:
    (tmp_path / "image").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    # A NUL past the sniffed head: the rest of the file decides (UTF-8: text).
    (tmp_path / "late-nul").write_bytes(b"a" * SNIFF_BYTES + b"\x00b")
    # A UTF-8 character split by the end of the sniffed head is still text.
    (tmp_path / "split").write_bytes(b"a" * (SNIFF_BYTES - 1) + "é".encode())
    (tmp_path / "latin1").write_bytes("café au lait".encode("latin-1"))
    corpus = load_corpus([tmp_path])
    assert sorted(Path(s).name for s in corpus.files) == ["late-nul", "split"]
    reasons = {Path(where).name: reason for where, reason in corpus.skipped}
    assert reasons["image"] == BINARY
    assert reasons["latin1"].startswith("not UTF-8 (")


def test_include_and_exclude_globs_match_names_and_relative_paths(
    folder: Path,
) -> None:
    only_md = load_corpus([folder], include=["*.md"])
    assert [Path(s).name for s in only_md.files] == ["a.md"]
    assert only_md.skipped == []  # the others were not read, so not skipped
    assert str(folder / "notes.pdf") in only_md.excluded
    by_path = load_corpus([folder], include=["sub/*", "LICENSE"])
    assert sorted(Path(s).name for s in by_path.files) == ["LICENSE", "b.txt"]
    left = load_corpus([folder], exclude=["sub/*", "*.pdf", "latin1.txt"])
    assert sorted(Path(s).name for s in left.files) == [
        "LICENSE",
        "a.md",
        "rows.jsonl",
    ]
    assert all("rows.jsonl" in where for where, _ in left.skipped)  # rows only


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


# -- dedupe by content ----------------------------------------------------------


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    root = tmp_path / "copies"
    (root / "old").mkdir(parents=True)
    (root / "a.md").write_text("alpha beta", encoding="utf-8")
    (root / "old" / "b.md").write_text("alpha beta", encoding="utf-8")
    (root / "c.md").write_text("gamma", encoding="utf-8")
    return root


def test_dedupe_is_off_by_default(copies: Path) -> None:
    corpus = load_corpus([copies])
    assert [d.page_content for d in corpus.documents].count("alpha beta") == 2
    assert corpus.duplicates == []


def test_dedupe_keeps_one_chunk_and_records_the_merged_sources(copies: Path) -> None:
    corpus = load_corpus([copies], dedupe=True)
    texts = [d.page_content for d in corpus.documents]
    assert sorted(texts) == ["alpha beta", "gamma"]
    kept = next(d for d in corpus.documents if d.page_content == "alpha beta")
    assert kept.metadata["source"] == str(copies / "a.md")  # first in file order
    assert kept.metadata["duplicate_sources"] == [str(copies / "old" / "b.md")]
    [merged] = corpus.duplicates
    assert merged.metadata["source"] == str(copies / "old" / "b.md")
    assert merged.metadata["duplicate_of"] == kept.id
    assert kept.metadata["duplicate_ids"] == [merged.id]
    plain = next(d for d in corpus.documents if d.page_content == "gamma")
    assert "duplicate_sources" not in plain.metadata


def test_reindexing_with_dedupe_is_idempotent(copies: Path) -> None:
    embedding = AxisEmbeddings(WORDS)
    store = FaissVectorStore(embedding)
    first = sync_store(store, load_corpus([copies], dedupe=True), [copies])
    assert (first.added, first.removed) == (2, 0)
    embedding.calls = 0
    again = sync_store(store, load_corpus([copies], dedupe=True), [copies])
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 2, 0)
    assert embedding.calls == 0
    assert len(store.ids) == 2


def test_a_new_copy_updates_the_kept_chunk_and_a_deleted_original_hands_over(
    copies: Path,
) -> None:
    (copies / "old" / "b.md").unlink()
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    sync_store(store, load_corpus([copies], dedupe=True), [copies])

    (copies / "old" / "b.md").write_text("alpha beta", encoding="utf-8")
    report = sync_store(store, load_corpus([copies], dedupe=True), [copies])
    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    [kept] = [d for d in store.get_by_ids(store.ids) if d.page_content == "alpha beta"]
    assert kept.metadata["duplicate_sources"] == [str(copies / "old" / "b.md")]

    (copies / "a.md").unlink()
    report = sync_store(store, load_corpus([copies], dedupe=True), [copies])
    assert (report.added, report.removed) == (1, 1)
    [kept] = [d for d in store.get_by_ids(store.ids) if d.page_content == "alpha beta"]
    assert kept.metadata["source"] == str(copies / "old" / "b.md")
    assert "duplicate_sources" not in kept.metadata


def test_changed_jsonl_metadata_replaces_the_chunk(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "r1", "text": "alpha", "metadata": {"v": 1}}\n')
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    sync_store(store, load_corpus([path]), [path])
    path.write_text('{"id": "r1", "text": "alpha", "metadata": {"v": 2}}\n')
    report = sync_store(store, load_corpus([path]), [path])
    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    [doc] = store.get_by_ids(store.ids)
    assert doc.metadata["v"] == 2


class _WordTokenizer:
    """Counts words: a stand-in with a sentence-transformers tokenizer's API."""

    def encode(self, text: str, **kwargs: object) -> list[int]:
        assert kwargs == {"add_special_tokens": False, "verbose": False}
        return [0] * len(text.split())

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 2


class _WindowedEmbeddings(AxisEmbeddings):
    """Reads 20 tokens of a text (2 of them special), like a tiny MiniLM."""

    tokenizer = _WordTokenizer()
    max_seq_length = 20


def _words(count: int) -> str:
    return " ".join(f"w{i}" for i in range(count))


def test_default_chunks_fit_the_embedders_window(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(_words(200), encoding="utf-8")
    corpus = load_corpus([tmp_path], embedding=_WindowedEmbeddings(WORDS))
    sizes = [len(d.page_content.split()) for d in corpus.documents]
    assert max(sizes) == 18  # the window, less its 2 special tokens
    assert corpus.window == 20
    assert corpus.too_long == []
    # Neighbours share 15% of the window (3 words).
    first, second = corpus.documents[0].page_content, corpus.documents[1].page_content
    assert first.split()[-3:] == second.split()[:3]


def test_a_chunk_size_past_the_window_warns_with_the_share(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = "\n\n".join([_words(5), _words(30), _words(8), _words(40), _words(3)])
    (tmp_path / "a.md").write_text(text, encoding="utf-8")
    with caplog.at_level("WARNING", logger="langchain_ce_rerank.ingest"):
        corpus = load_corpus(
            [tmp_path],
            embedding=_WindowedEmbeddings(WORDS),
            chunk_size=150,
            chunk_overlap=0,
        )
    lengths = [len(d.page_content.split()) for d in corpus.documents]
    over = [d.id for d in corpus.documents if len(d.page_content.split()) > 18]
    assert max(len(d.page_content) for d in corpus.documents) <= 150  # characters
    assert corpus.too_long == over
    assert 0 < len(over) < len(lengths)
    share = f"{len(over)} of {len(lengths)} chunks ({len(over) / len(lengths):.1%})"
    assert [r.getMessage() for r in caplog.records] == [
        f"{share} are longer than the embedding model's window of 20 tokens: it "
        "embeds only their start, and search never sees the rest; pass a smaller "
        "chunk_size, or none to cut chunks to the window."
    ]


def test_the_window_counts_the_special_tokens(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(_words(18) + "\n\n" + _words(19))
    corpus = load_corpus(
        [tmp_path],
        embedding=_WindowedEmbeddings(WORDS),
        chunk_size=70,
        chunk_overlap=0,
    )
    assert [len(d.page_content.split()) for d in corpus.documents] == [18, 19]
    assert corpus.too_long == [corpus.documents[1].id]  # 19 + 2 > 20


def test_without_a_known_window_chunks_are_characters(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(_words(400), encoding="utf-8")
    for embedding in (None, AxisEmbeddings(WORDS)):  # no tokenizer: no window
        corpus = load_corpus([tmp_path], embedding=embedding)
        assert max(len(d.page_content) for d in corpus.documents) <= 1000
        assert len(corpus.documents[0].page_content) > 900
        assert corpus.window is None


def test_an_overlap_without_a_chunk_size_is_in_tokens(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(_words(100), encoding="utf-8")
    embedding = _WindowedEmbeddings(WORDS)
    corpus = load_corpus([tmp_path], embedding=embedding, chunk_overlap=0)
    words = [w for d in corpus.documents for w in d.page_content.split()]
    assert words == _words(100).split()  # no overlap, nothing lost
    with pytest.raises(ValueError, match="smaller than the chunk size, 18 tokens"):
        load_corpus([tmp_path], embedding=embedding, chunk_overlap=18)


def test_a_plan_from_ids_and_metadata_needs_no_model(folder: Path) -> None:
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    sync_store(store, load_corpus([folder]), [folder])
    stored = {doc.id: doc.metadata for doc in store.get_by_ids(store.ids) if doc.id}
    corpus = load_corpus([folder])
    same = plan_sync(stored, corpus, [folder])
    assert same.nothing_to_do
    assert (same.to_embed, same.unchanged) == (0, len(corpus.documents))

    (folder / "sub" / "b.txt").write_text("beta changed", encoding="utf-8")
    changed = plan_sync(stored, load_corpus([folder]), [folder])
    assert not changed.nothing_to_do
    assert changed.to_embed == 1  # only the new chunk is embedded
    assert len(changed.stale) == 1
