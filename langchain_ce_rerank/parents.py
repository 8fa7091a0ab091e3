"""Parent documents: rerank the whole document a retrieved chunk came from.

Search finds chunks, because a bi-encoder reads only its window; but the
answer is often elsewhere in the same document, and several chunks of one
document crowd out the others. With `parents=` the reranker collapses the
first stage's chunks into their parent documents (by `group_by`, `"doc_id"`
by default, the key `load_corpus` writes and LangChain's
`ParentDocumentRetriever` uses), looks each parent up, and scores the whole
parent as its best window (`long_documents="max_passage"`).

A parent store is anything with LangChain's `BaseStore.mget(keys)` (an
`InMemoryStore`, `create_kv_docstore(LocalFileStore(...))`, the docstore of a
`ParentDocumentRetriever`), a plain `dict`, or `SourceFiles`, which reads a
parent back from the file `ce-rerank index` / `load_corpus` read it from.
A chunk whose parent cannot be found is an error naming it: the chunk is
never returned in its parent's place.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

from langchain_core.documents import Document

from langchain_ce_rerank.ingest import read_units

__all__ = [
    "PARENT_METADATA_KEYS",
    "PARENT_REMEDY",
    "ParentStore",
    "Parents",
    "SourceFiles",
    "collapse_to_parents",
]

PARENT_METADATA_KEYS = ("parent_chunks", "best_chunk_span")
"""What a parent returned in its chunks' place carries besides its own
metadata: the ids of the chunks collapsed into it, in first-stage order, and
the `[start, end]` characters of the best-ranked one in the parent's text."""


@runtime_checkable
class ParentStore(Protocol):
    """Parent documents by key: LangChain's `BaseStore[str, Document]` read side."""

    def mget(self, keys: Sequence[str]) -> list[Document | None]:
        """The parent of each key, or None where there is none."""


Parents: TypeAlias = ParentStore | Mapping[str, Document]
"""A parent store, or a plain mapping of key to parent document."""

PARENT_REMEDY = (
    "add the parent to the store, or leave out parents= to rerank the chunks themselves"
)
"""What a missing parent's error asks a Python caller to do."""


class SourceFiles:
    """Parents read back from the files chunks were cut from.

    `load_corpus` and `ce-rerank index` write each chunk's file as
    `metadata["source"]` and its parent id as `doc_id` (the same path for a
    plain file, the row id for a `.jsonl` row). The parent is the whole file,
    or the whole row's text, read again when asked for: a file changed since
    indexing no longer holds its chunk where the index says (`start_index`),
    and the reranker then refuses it rather than score another text. Used as
    `parents=`, chunks are grouped by `SourceFiles.group_by` unless the
    compressor's `group_by` says otherwise.

    Example:
        ```python
        from pathlib import Path

        from langchain_ce_rerank.parents import SourceFiles

        Path("notes.md").write_text("Tar the volume, copy the archive, extract it.")
        parents = SourceFiles()
        [parent] = parents.mget([str(Path("notes.md").resolve())])
        print(parent.metadata["source"], len(parent.page_content))
        ```
    """

    @staticmethod
    def group_by(chunk: Document) -> str | tuple[str, str]:
        """A chunk's parent key: its file, or (its file, its row id) for a row.

        Raises:
            ValueError: The chunk has no `metadata["source"]` (it was not
                read from a file by `load_corpus`).
        """
        source = chunk.metadata.get("source")
        if not isinstance(source, str):
            msg = (
                f"chunk {chunk.id!r} has no metadata['source'] naming its file, "
                "so SourceFiles cannot read its parent; index it with "
                "load_corpus or ce-rerank index, or keep parents in a store"
            )
            raise ValueError(msg)
        row = chunk.metadata.get("doc_id", source)
        return source if row == source else (source, str(row))

    def mget(self, keys: Sequence[str | tuple[str, str]]) -> list[Document | None]:
        """Each key's file (or JSONL row) as a Document; None where there is none.

        Args:
            keys: Absolute file paths, or `(path, row id)` for a `.jsonl` row
                (what `group_by` returns).

        Returns:
            Per key, the text with `source` and `doc_id` metadata (and a row's
            own metadata), or None for a missing, unreadable or non-text file
            or a row that is no longer there.
        """
        read: dict[str, dict[str | None, tuple[str, dict[str, object]]]] = {}
        found: list[Document | None] = []
        for key in keys:
            path, row = (key, None) if isinstance(key, str) else key
            if path not in read:
                try:
                    units = read_units(path)
                except (OSError, ValueError):
                    units = []
                read[path] = {unit: (text, meta) for unit, text, meta in units}
            unit = read[path].get(row)
            if unit is None:
                found.append(None)
                continue
            text, metadata = unit
            found.append(
                Document(
                    page_content=text,
                    id=path if row is None else f"{path}#{row}",
                    metadata={**metadata, "source": path, "doc_id": row or path},
                )
            )
        return found


def collapse_to_parents(
    documents: Sequence[Document],
    groups: Sequence[Hashable],
    parents: Parents,
    group_by: object,
    remedy: str = PARENT_REMEDY,
) -> list[Document]:
    """The parents of `documents`, one per group, in first-stage order.

    A parent comes where its first (best-ranked) chunk was, with that chunk's
    `retrieval_rank` and `retrieval_score`, the ids of all its chunks
    (`parent_chunks`) and the best-ranked chunk's span in its text
    (`best_chunk_span`, from the chunk's `start_index`).

    Args:
        documents: The first stage's chunks, best first.
        groups: Each chunk's group (its parent's key), by position.
        parents: Where the parents are looked up by key.
        group_by: The setting the groups came from, for the error.
        remedy: What the error tells the caller to do about a missing
            parent, in the words of the entry point they used.

    Returns:
        New parent Documents (the store's are not changed).

    Raises:
        LookupError: A group has no parent, or its parent no longer holds its
            best chunk's text at the chunk's `start_index`.
    """
    members: dict[Hashable, list[Document]] = {}
    for doc, key in zip(documents, groups, strict=True):
        members.setdefault(key, []).append(doc)
    keys = list(members)
    if isinstance(parents, Mapping):
        found = [parents.get(key) for key in keys]  # type: ignore[call-overload]
    else:
        found = list(parents.mget(keys))  # type: ignore[arg-type]
    collapsed = []
    for key, parent in zip(keys, found, strict=True):
        chunks = members[key]
        best = chunks[0]
        if parent is None:
            msg = (
                f"no parent document for {key!r} (group_by={group_by!r}; chunk "
                f"{best.id!r} of {len(chunks)} in this group): the parent store "
                f"has none, and a chunk is never returned in its place; {remedy}"
            )
            raise LookupError(msg)
        span = _chunk_span(best, parent)
        metadata = {
            **parent.metadata,
            "parent_chunks": [doc.id for doc in chunks],
            **({"best_chunk_span": list(span)} if span is not None else {}),
        }
        for name in ("retrieval_rank", "retrieval_score"):
            if name in best.metadata:
                metadata[name] = best.metadata[name]
        collapsed.append(parent.model_copy(update={"metadata": metadata}))
    return collapsed


def _chunk_span(chunk: Document, parent: Document) -> tuple[int, int] | None:
    """The chunk's characters in its parent, checked against the parent's text."""
    start = chunk.metadata.get("start_index")
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        return None
    end = start + len(chunk.page_content)
    if parent.page_content[start:end] != chunk.page_content:
        msg = (
            f"the parent of chunk {chunk.id!r} does not hold the chunk's text at "
            f"its start_index {start}: the parent changed since the chunk was "
            "indexed (index it again: ce-rerank index, or sync_store), or the "
            "store holds another text under its key"
        )
        raise LookupError(msg)
    return (start, end)
