"""From files on disk to chunked Documents with stable ids, and index syncing.

Any text file becomes one text, whatever its name (`README`, `copyright`,
`notes.md`): a file is text when its first 8 KB hold no NUL byte and the whole
file is UTF-8. `.jsonl` files hold one JSON object per line with `id`, `text`
and optional `metadata` (a BEIR `corpus.jsonl`, with `_id` and `title`, works
as it is). Texts are split with `langchain-text-splitters`, by default into
chunks that fit the embedding model's window, counted in its own tokens. Each
chunk's id is built from its source path, its row id (JSONL), its position and
a hash of its content, so re-indexing the same files yields the same ids, and a
changed chunk gets a new one.

Binary and non-UTF-8 files are listed in `Corpus.skipped`, never dropped
silently; `include` / `exclude` globs choose files by name or relative path,
and hidden files and folders (names starting with ".") are not searched.
`load_corpus(..., dedupe=True)` keeps one chunk per distinct text and records
where the merged copies came from.
"""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Annotations only: importing this module stays cheap, so `ce-rerank index
    # --help` can show the chunk defaults without loading LangChain or FAISS.
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

    from langchain_ce_rerank.models import TokenWindow
    from langchain_ce_rerank.store import IndexStore

__all__ = [
    "BINARY",
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_OVERLAP_FRACTION",
    "SNIFF_BYTES",
    "Corpus",
    "SyncPlan",
    "SyncReport",
    "find_files",
    "load_corpus",
    "plan_sync",
    "read_units",
    "sync_store",
    "window_warning",
]

logger = logging.getLogger(__name__)

SNIFF_BYTES = 8192
"""Bytes read to tell a text file from a binary one (a NUL byte means binary)."""
BINARY = "binary (a NUL byte in its first 8 KB)"
"""The `Corpus.skipped` reason of a binary file."""
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
    """(path, reason) for every file or JSONL row that could not be used; a
    binary file's reason is `BINARY`."""
    excluded: list[str] = field(default_factory=list)
    """Files left out by the `include` / `exclude` globs."""
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
    return [path for path, _ in _files_under(paths)]


def _files_under(
    paths: Sequence[str | os.PathLike[str]],
) -> list[tuple[Path, str]]:
    """Every file named or found under a folder, with its path relative to it."""
    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if not path.exists():
            msg = f"{raw}: no such file or folder"
            raise FileNotFoundError(msg)
        if path.is_dir():
            found.extend(
                (p, p.relative_to(path).as_posix())
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append((path, path.name))
    return list({p: (p, relative) for p, relative in found}.values())


def _matches(relative: str, globs: Sequence[str]) -> bool:
    """Whether a glob matches the file's relative path or its name."""
    name = relative.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(relative, glob) or fnmatch.fnmatchcase(name, glob)
        for glob in globs
    )


def _read_text(path: Path) -> tuple[str | None, str]:
    """(the file's text, "") when it is UTF-8 text, else (None, why not)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
            if b"\0" in head:
                return None, BINARY
            # The head alone first: a large binary file is not read whole.
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            data = head + handle.read()
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as err:
        return None, f"not UTF-8 ({err.reason} at byte {err.start})"
    except OSError as err:
        return None, f"unreadable ({err.strerror or err})"


def _chunk_id(source: str, row: str | None, position: int, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    unit = f"#{row}" if row is not None else ""
    return f"{source}{unit}#{position}:{digest}"


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


def read_units(
    path: str | os.PathLike[str],
) -> list[tuple[str | None, str, dict[str, Any]]]:
    """The texts `load_corpus` cuts into chunks from one file, read again.

    What a chunk's `start_index` counts into: the file's whole text, or, for a
    `.jsonl` file, each row's `text` (with its row id and metadata).

    Args:
        path: A file `load_corpus` read (a chunk's `metadata["source"]`).

    Returns:
        `(row id, text, metadata)` per JSONL row (malformed rows left out, as
        `load_corpus` leaves them out), else one `(None, text, {})`.

    Raises:
        ValueError: The file is not UTF-8 text, or cannot be read.
    """
    file = Path(path)
    text, reason = _read_text(file)
    if text is None:
        msg = f"{file}: {reason}"
        raise ValueError(msg)
    if file.suffix.lower() == ".jsonl":
        return list(_jsonl_rows(file, text, []))
    return [(None, text, {})]


def load_corpus(
    paths: Sequence[str | os.PathLike[str]],
    *,
    embedding: Embeddings | TokenWindow | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    dedupe: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Corpus:
    r"""Read text files and folders of them into chunked Documents.

    Every text file is read, whatever its name; `.jsonl` files are read row by
    row. Binary files (a NUL byte in the first 8 KB), unreadable or non-UTF-8
    files, and malformed JSONL rows are skipped with a warning and listed in
    `Corpus.skipped`; nothing else is dropped, unless `dedupe` merges copies of
    the same text or the globs leave files out (listed in `Corpus.excluded`).

    Chunks should fit the window of the embedding model that will embed
    them: it ignores the rest. Given `embedding` (and no `chunk_size`),
    chunks are cut to that window, counted in the model's own tokens (254
    word pieces plus 2 special tokens for all-MiniLM-L6-v2). Given a
    `chunk_size`, chunks are that many characters, and when some run past
    the window a warning says what share (`Corpus.too_long` lists them).

    Args:
        paths: Files and folders (searched recursively, hidden names excepted).
        embedding: The embedding model the chunks are for (a store's
            `embeddings`), or just its window (`load_token_window`, which
            reads no weights): sizes the default chunk, and checks every
            chunk against the window. Without it (or when it has no tokenizer),
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
        include: Globs (`*.md`, `docs/*`, `copyright`); when given, only files
            whose name or path relative to the folder searched matches one are
            read. `*` also matches `/`.
        exclude: Globs, matched the same way; matching files are not read.

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
    files = _files_under(paths)  # a missing path fails before LangChain loads
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from langchain_ce_rerank.models import TokenWindow, embedding_window

    window = (
        embedding
        if embedding is None or isinstance(embedding, TokenWindow)
        else embedding_window(embedding)
    )
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
    for path, relative in files:
        source = str(path)
        if (include and not _matches(relative, include)) or _matches(relative, exclude):
            corpus.excluded.append(source)
            continue
        text, reason = _read_text(path)
        if text is None:
            corpus.skipped.append((source, reason))
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


@dataclass
class SyncPlan:
    """What `sync_store` will do, worked out from ids and metadata: no model."""

    fresh: list[Document]
    """New chunks (new or changed text), to embed and add."""
    changed: list[Document]
    """Chunks whose text is stored but whose metadata changed, to re-embed."""
    stale: list[str]
    """Ids of stored chunks of changed or deleted files, to remove."""
    unchanged: int
    """Chunks already stored as they are."""

    @property
    def to_embed(self) -> int:
        """How many chunks the sync embeds."""
        return len(self.fresh) + len(self.changed)

    @property
    def nothing_to_do(self) -> bool:
        """True when the store already holds exactly the corpus."""
        return not (self.fresh or self.changed or self.stale)


def plan_sync(
    stored: Mapping[str, Mapping[str, Any]],
    corpus: Corpus,
    paths: Sequence[str | os.PathLike[str]],
) -> SyncPlan:
    """Compare a store's chunks with `corpus`, without embedding anything.

    Chunk ids hold a hash of the text, so the ids alone tell new text from
    stored text; this is how `ce-rerank index` answers a re-run on unchanged
    files without loading the embedding model.

    Args:
        stored: {chunk id: metadata} of every chunk in the store.
        corpus: `load_corpus(paths, ...)`'s result.
        paths: The same paths, which bound what may be removed.

    Returns:
        The chunks to add, to replace and to remove, and how many stay.
    """
    roots = [Path(p).expanduser().resolve() for p in paths]
    skipped = {where for where, _ in corpus.skipped}
    wanted = {doc.id for doc in corpus.documents}
    stale = [
        doc_id
        for doc_id, metadata in stored.items()
        if doc_id not in wanted
        and _in_scope(metadata.get("source"), roots)
        and metadata.get("source") not in skipped
    ]
    fresh = [doc for doc in corpus.documents if doc.id not in stored]
    changed = [
        doc
        for doc in corpus.documents
        if doc.id is not None and doc.id in stored and stored[doc.id] != doc.metadata
    ]
    return SyncPlan(
        fresh=fresh,
        changed=changed,
        stale=stale,
        unchanged=len(wanted) - len(fresh) - len(changed),
    )


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
    plan = plan_sync(
        {doc.id: doc.metadata for doc in store.get_by_ids(store.ids) if doc.id},
        corpus,
        paths,
    )
    for docs in (plan.fresh, plan.changed):  # a changed chunk replaces by id
        for start in range(0, len(docs), batch_size):
            batch = docs[start : start + batch_size]
            store.add_documents(batch)
            if progress is not None:
                progress(len(batch))
    if plan.stale:
        store.delete(plan.stale)
    return SyncReport(
        added=len(plan.fresh),
        unchanged=plan.unchanged,
        removed=len(plan.stale),
        updated=len(plan.changed),
    )
