"""From files on disk to chunked Documents with stable ids, and index syncing.

`.txt` and `.md` files become one text each; `.jsonl` files hold one JSON object
per line with `id`, `text` and optional `metadata` (a BEIR `corpus.jsonl`, with
`_id` and `title`, works as it is). Texts are split with
`langchain-text-splitters`, by default into chunks that fit the embedding
model's window, counted in its own tokens. Each chunk's id is built from its
source path, its row id (JSONL), its position and a hash of its content, so
re-indexing the same files yields the same ids, and a changed chunk gets a new
one.

Files of other types found in a folder are listed in `Corpus.skipped`, never
dropped silently; hidden files and folders (names starting with ".") are not
searched. `load_corpus(..., dedupe=True)` keeps one chunk per distinct text and
records where the merged copies came from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Annotations only: importing this module stays cheap, so `ce-rerank index
    # --help` can show SUPPORTED_SUFFIXES and the chunk defaults without
    # loading LangChain or FAISS.
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

    from langchain_ce_rerank.models import TokenWindow
    from langchain_ce_rerank.store import IndexStore

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_OVERLAP_FRACTION",
    "SUPPORTED_SUFFIXES",
    "Corpus",
    "SyncReport",
    "find_files",
    "load_corpus",
    "sync_store",
    "window_warning",
]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".jsonl")
DEFAULT_CHUNK_SIZE = 1000
"""Characters per chunk when no embedding model's window is known (no
`embedding`, or one without a tokenizer). With one, the default chunk is the
model's window in its own tokens: 1,000 characters often run past the 256
word pieces all-MiniLM-L6-v2 reads."""
DEFAULT_CHUNK_OVERLAP = 150
"""Characters shared by neighbouring chunks of `DEFAULT_CHUNK_SIZE` or of a
`chunk_size` given in characters."""
DEFAULT_OVERLAP_FRACTION = 0.15
"""Tokens shared by neighbouring chunks sized by the window, as a fraction of
the chunk (as 150 of 1,000 characters)."""


@dataclass
class Corpus:
    """What `load_corpus` read: chunks, the files they came from, and skips."""

    documents: list[Document] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) for every file or JSONL row that could not be used."""
    duplicates: list[Document] = field(default_factory=list)
    """With `dedupe=True`: the chunks left out because an earlier chunk has the
    same text; `metadata["duplicate_of"]` is the id of the chunk that was kept."""
    window: int | None = None
    """The embedding model's window in tokens, when `load_corpus` knew it."""
    too_long: list[str] = field(default_factory=list)
    """Ids of the chunks longer than `window`: the model embeds only their
    start (a warning gives their share)."""


@dataclass
class SyncReport:
    """What `sync_store` changed."""

    added: int
    unchanged: int
    removed: int
    updated: int = 0
    """Chunks whose text was unchanged but whose metadata changed (for example
    the `duplicate_sources` of a merged chunk); they are re-embedded."""


def find_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Every file under `paths` (hidden names excepted), or FileNotFoundError.

    Cheap: imports nothing, so a command can check its paths first.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if not path.exists():
            msg = f"{raw}: no such file or folder"
            raise FileNotFoundError(msg)
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def _chunk_id(source: str, row: str | None, position: int, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    unit = f"#{row}" if row is not None else ""
    return f"{source}{unit}#{position}:{digest}"


def _unsupported(path: Path) -> str:
    kind = f"type {path.suffix!r}" if path.suffix else "file without an extension"
    return f"unsupported {kind} (only {', '.join(SUPPORTED_SUFFIXES)} are read)"


def _merge_duplicates(corpus: Corpus) -> None:
    """Keep the first chunk of each distinct text; note where the others were."""
    kept: dict[str, Document] = {}
    unique: list[Document] = []
    for doc in corpus.documents:
        first = kept.get(doc.page_content)
        if first is None:
            kept[doc.page_content] = doc
            unique.append(doc)
            continue
        doc.metadata["duplicate_of"] = first.id
        corpus.duplicates.append(doc)
        sources = first.metadata.setdefault("duplicate_sources", [])
        if doc.metadata["source"] not in sources:
            sources.append(doc.metadata["source"])
        first.metadata.setdefault("duplicate_ids", []).append(doc.id)
    corpus.documents = unique


def _jsonl_rows(
    path: Path, text: str, skipped: list[tuple[str, str]]
) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            skipped.append((where, f"not valid JSON ({err.msg})"))
            continue
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            skipped.append((where, "a row needs a string 'text'"))
            continue
        # BEIR corpora name the id "_id" and carry a "title": accept both.
        row_id = row.get("id", row.get("_id"))
        if not isinstance(row_id, str | int):
            skipped.append((where, "a row needs an 'id' (string or number)"))
            continue
        metadata = row.get("metadata") or {}
        if not isinstance(metadata, dict):
            skipped.append((where, "'metadata' must be an object"))
            continue
        if isinstance(row.get("title"), str) and "title" not in metadata:
            metadata = {**metadata, "title": row["title"]}
        yield str(row_id), row["text"], metadata


def load_corpus(
    paths: Sequence[str | os.PathLike[str]],
    *,
    embedding: Embeddings | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    dedupe: bool = False,
) -> Corpus:
    r"""Read `.txt`, `.md` and `.jsonl` files and folders into chunked Documents.

    Files of other types, unreadable or non-UTF-8 files, and malformed JSONL
    rows are skipped with a warning and listed in `Corpus.skipped`; nothing
    else is dropped, unless `dedupe` merges copies of the same text.

    Chunks should fit the window of the embedding model that will embed
    them: it ignores the rest. Given `embedding` (and no `chunk_size`),
    chunks are cut to that window, counted in the model's own tokens (254
    word pieces plus 2 special tokens for all-MiniLM-L6-v2). Given a
    `chunk_size`, chunks are that many characters, and when some run past
    the window a warning says what share (`Corpus.too_long` lists them).

    Args:
        paths: Files and folders (searched recursively, hidden names excepted).
        embedding: The embedding model the chunks are for (a store's
            `embeddings`): sizes the default chunk, and checks every chunk
            against its window. Without it (or when it has no tokenizer),
            the default chunk is `DEFAULT_CHUNK_SIZE` characters.
        chunk_size: Maximum characters per chunk; default: the embedding
            model's window, in its tokens.
        chunk_overlap: Shared by neighbouring chunks, in the chunk size's
            unit: characters with a `chunk_size` (default 150), else tokens
            (default 15% of the window).
        dedupe: Keep only the first chunk (in file order) of each distinct text.
            The kept chunk lists the others' files in
            `metadata["duplicate_sources"]` and their ids in
            `metadata["duplicate_ids"]`; the merged chunks are in
            `Corpus.duplicates`. Off by default: the corpus mirrors the files.

    Returns:
        The chunks, each with `source` (absolute file path), `doc_id` (the JSONL
        row id, or the path), `chunk` (position) and `start_index` in metadata.

    Raises:
        FileNotFoundError: A path does not exist.
        ValueError: Bad chunk settings.

    Example:
        ```python
        from pathlib import Path
        from langchain_ce_rerank import load_corpus

        Path("notes.md").write_text("# Backups\n\nTar the volume, copy, extract.")
        Path("copy.md").write_text("# Backups\n\nTar the volume, copy, extract.")
        corpus = load_corpus(["notes.md", "copy.md"], chunk_size=800, dedupe=True)
        print(corpus.documents[0].id, corpus.documents[0].metadata, corpus.skipped)
        print(len(corpus.duplicates))  # 1: copy.md's chunk, merged into notes.md's
        ```
    """
    if chunk_size is not None and chunk_size < 1:
        msg = f"chunk_size must be at least 1 (characters), got {chunk_size}"
        raise ValueError(msg)
    files = find_files(paths)  # a missing path fails before LangChain loads
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from langchain_ce_rerank.models import embedding_window

    window = None if embedding is None else embedding_window(embedding)
    if chunk_size is None and window is not None:
        size, unit = window.text_tokens, "tokens (the embedding model's window)"
        overlap = (
            round(size * DEFAULT_OVERLAP_FRACTION)
            if chunk_overlap is None
            else chunk_overlap
        )
        length: Callable[[str], int] = window.count
    else:
        size, unit = chunk_size or DEFAULT_CHUNK_SIZE, "characters"
        overlap = DEFAULT_CHUNK_OVERLAP if chunk_overlap is None else chunk_overlap
        length = len
    if not 0 <= overlap < size:
        msg = (
            f"chunk_overlap {overlap} must be at least 0 and smaller than the "
            f"chunk size, {size} {unit}"
        )
        raise ValueError(msg)
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        length_function=length,
        add_start_index=True,
    )
    corpus = Corpus()
    for path in files:
        source = str(path)
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            corpus.skipped.append((source, _unsupported(path)))
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            corpus.skipped.append(
                (source, f"not UTF-8 ({err.reason} at byte {err.start})")
            )
            continue
        except OSError as err:
            corpus.skipped.append((source, f"unreadable ({err.strerror or err})"))
            continue
        corpus.files.append(source)
        if path.suffix.lower() == ".jsonl":
            units: Iterable[tuple[str | None, str, dict[str, Any]]] = _jsonl_rows(
                path, text, corpus.skipped
            )
        else:
            units = [(None, text, {})]
        for row_id, body, metadata in units:
            base = {**metadata, "source": source, "doc_id": row_id or source}
            for position, chunk in enumerate(splitter.create_documents([body], [base])):
                chunk.metadata["chunk"] = position
                chunk.id = _chunk_id(source, row_id, position, chunk.page_content)
                corpus.documents.append(chunk)
    if dedupe:
        _merge_duplicates(corpus)
    for where, reason in corpus.skipped:
        logger.warning("Skipped %s: %s", where, reason)
    if window is not None:
        _check_window(corpus, window)
    return corpus


def window_warning(corpus: Corpus) -> str | None:
    """One line on the chunks longer than the window, or None when all fit.

    The caller adds the remedy in its own words (`chunk_size`, `--chunk-size`).
    """
    if not corpus.too_long or corpus.window is None:
        return None
    share = len(corpus.too_long) / len(corpus.documents)
    return (
        f"{len(corpus.too_long)} of {len(corpus.documents)} chunks ({share:.1%}) "
        f"are longer than the embedding model's window of {corpus.window} tokens: "
        "it embeds only their start, and search never sees the rest"
    )


def _check_window(corpus: Corpus, window: TokenWindow) -> None:
    corpus.window = window.size
    corpus.too_long = [
        str(doc.id)
        for doc in corpus.documents
        if window.count(doc.page_content) > window.text_tokens
    ]
    warning = window_warning(corpus)
    if warning is not None:
        logger.warning(
            "%s; pass a smaller chunk_size, or none to cut chunks to the window.",
            warning,
        )


def _in_scope(source: object, roots: Sequence[Path]) -> bool:
    if not isinstance(source, str):
        return False
    path = Path(source)
    return any(path == root or root in path.parents for root in roots)


def sync_store(
    store: IndexStore,
    corpus: Corpus,
    paths: Sequence[str | os.PathLike[str]],
    *,
    batch_size: int = 64,
    progress: Callable[[int], object] | None = None,
) -> SyncReport:
    """Make `store` hold exactly `corpus` for everything under `paths`.

    New or changed chunks are embedded and added; chunks of changed or deleted
    files under `paths` are removed; unchanged chunks are not re-embedded.
    A chunk whose text is unchanged but whose metadata changed (a JSONL row's
    metadata, or the sources merged into it by `dedupe`) is replaced.
    Chunks of files that were skipped this time (unreadable) are kept.

    Args:
        store: The store to update in place.
        corpus: `load_corpus(paths, ...)`'s result.
        paths: The same paths, which bound what may be removed.
        batch_size: Chunks embedded per call.
        progress: Called with the number of chunks embedded after each batch.

    Returns:
        How many chunks were added, updated, left unchanged and removed.

    Example:
        ```python
        from pathlib import Path
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore, load_corpus, sync_store

        Path("docs").mkdir(exist_ok=True)
        Path("docs/a.md").write_text("Tar the volume, copy it, extract it.")
        store = FaissVectorStore(DeterministicFakeEmbedding(size=8))
        corpus = load_corpus(["docs"], embedding=store.embeddings)
        print(sync_store(store, corpus, ["docs"]))  # 1 added
        print(sync_store(store, corpus, ["docs"]))  # 1 unchanged
        ```
    """
    roots = [Path(p).expanduser().resolve() for p in paths]
    skipped = {where for where, _ in corpus.skipped}
    existing: dict[str, Document] = {
        doc.id: doc for doc in store.get_by_ids(store.ids) if doc.id
    }
    wanted = {doc.id for doc in corpus.documents}
    stale = [
        doc_id
        for doc_id, doc in existing.items()
        if doc_id not in wanted
        and _in_scope(doc.metadata.get("source"), roots)
        and doc.metadata.get("source") not in skipped
    ]
    fresh = [doc for doc in corpus.documents if doc.id not in existing]
    changed = [
        doc
        for doc in corpus.documents
        if doc.id in existing and existing[doc.id].metadata != doc.metadata
    ]
    for start in range(0, len(fresh), batch_size):
        batch = fresh[start : start + batch_size]
        store.add_documents(batch)
        if progress is not None:
            progress(len(batch))
    for start in range(0, len(changed), batch_size):
        batch = changed[start : start + batch_size]
        store.add_documents(batch)  # replaces by id
        if progress is not None:
            progress(len(batch))
    if stale:
        store.delete(stale)
    return SyncReport(
        added=len(fresh),
        unchanged=len(wanted) - len(fresh) - len(changed),
        removed=len(stale),
        updated=len(changed),
    )
