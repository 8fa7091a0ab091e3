"""`ce-rerank index`: split, embed and save files into an index folder."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_ce_rerank.ingest import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_OVERLAP_FRACTION,
    SUPPORTED_SUFFIXES,
)
from langchain_ce_rerank.models import DEFAULT_EMBEDDING_MODEL

if TYPE_CHECKING:
    from langchain_ce_rerank.ingest import Corpus
from langchain_ce_rerank.cli._common import (
    DEVICE_HELP,
    LISTED,
    MANIFEST,
    CliError,
    blame,
    check_device,
    find_model,
    positive,
    recorded_embedding,
)


def _shown(path: str) -> str:
    """A path relative to the working folder when it is under it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _listing(names: Sequence[str]) -> str:
    if len(names) > 4:
        return f"{', '.join(names[:3])} and {len(names) - 3} more files"
    return (
        " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    )


def _duplicates_line(corpus: Corpus) -> str:
    sources = {doc.id: doc.metadata["source"] for doc in corpus.documents}
    files: dict[str, None] = {}  # ordered, no repeats
    for dup in corpus.duplicates:
        files[_shown(sources[dup.metadata["duplicate_of"]])] = None
        files[_shown(dup.metadata["source"])] = None
    count = len(corpus.duplicates)
    return (
        f"{count} duplicate chunk{'s' if count > 1 else ''} merged (same text in "
        f"{_listing(list(files))}); each kept chunk lists the others in "
        "metadata['duplicate_sources'] (--no-dedupe keeps every copy)."
    )


def _print_skipped(skipped: Sequence[tuple[str, str]]) -> None:
    print(f"Skipped {len(skipped)}:", file=sys.stderr)
    for where, reason in skipped[:LISTED]:
        print(f"  {_shown(where)}: {reason}", file=sys.stderr)
    if len(skipped) > LISTED:
        print(f"  ... and {len(skipped) - LISTED} more", file=sys.stderr)


def _cmd_index(args: argparse.Namespace) -> int:
    overlap = args.chunk_overlap
    if overlap is not None and overlap < 0:
        msg = f"--chunk-overlap {overlap} must be at least 0"
        raise CliError(msg)
    if args.chunk_size is not None:
        shared = DEFAULT_CHUNK_OVERLAP if overlap is None else overlap
        if shared >= args.chunk_size:
            msg = (
                f"--chunk-overlap {shared} must be at least 0 and smaller than "
                f"--chunk-size ({args.chunk_size})"
            )
            raise CliError(msg)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        msg = (
            f"--out {args.out!r} is a file; "
            "pass a folder for the index (created if missing)"
        )
        raise CliError(msg)
    existing = (out / MANIFEST).is_file()
    if out.is_dir() and not existing and any(out.iterdir()):
        msg = (
            f"--out {args.out!r} holds other files but no index ({MANIFEST}); "
            "pass a new or empty folder"
        )
        raise CliError(msg)
    check_device(args.device)
    from langchain_ce_rerank.ingest import (
        find_files,
        load_corpus,
        sync_store,
        window_warning,
    )

    with blame("PATH"):
        find_files(args.paths)  # before FAISS, numpy, LangChain or a model load
    start_over = f"write to a new --out folder, or delete {args.out} to rebuild it"
    recorded = None
    if existing:
        with blame("--out", start_over):
            recorded = recorded_embedding(out)
    model = args.embedding or recorded or DEFAULT_EMBEDDING_MODEL
    if recorded and model != recorded:
        msg = (
            f"--out {args.out} was built with {recorded!r}, not {model!r}; pass "
            f"--embedding {recorded} or write to a new --out folder"
        )
        raise CliError(msg)
    find_model("--embedding", model)  # found (not loaded) before any heavy work
    from tqdm import tqdm

    from langchain_ce_rerank.models import load_embeddings
    from langchain_ce_rerank.store import new_index, open_index

    with blame("--embedding"):
        embeddings = load_embeddings(model, device=args.device)
    # Skipped files and over-long chunks are reported below, once, not also
    # as warnings.
    logging.getLogger("langchain_ce_rerank.ingest").setLevel(logging.ERROR)
    # Without --chunk-size the overlap is in tokens, checked once the window
    # is known.
    remedy = "pass a smaller --chunk-overlap, or --chunk-size in characters"
    with blame(*(("--chunk-overlap", remedy) if overlap is not None else ("PATH",))):
        corpus = load_corpus(
            args.paths,
            embedding=embeddings,
            chunk_size=args.chunk_size,
            chunk_overlap=overlap,
            dedupe=args.dedupe,
        )
    if not corpus.documents:
        first = (
            f"; first: {_shown(corpus.skipped[0][0])}: {corpus.skipped[0][1]}"
            if corpus.skipped
            else ""
        )
        msg = (
            f"PATH: no text in {', '.join(SUPPORTED_SUFFIXES)} files under "
            f"{' '.join(args.paths)} ({len(corpus.skipped)} skipped{first}); "
            "empty corpus, nothing was written"
        )
        raise CliError(msg)
    with blame("--out", start_over):
        store = open_index(out, embeddings) if existing else new_index(embeddings)
    with tqdm(
        total=len(corpus.documents), desc="Embedding", unit="chunk", file=sys.stderr
    ) as bar:
        report = sync_store(
            store, corpus, args.paths, batch_size=args.batch_size, progress=bar.update
        )
        bar.update(len(corpus.documents) - bar.n)  # unchanged chunks count as done
    with blame("--out"):
        store.save_local(out)
    updated = f"{report.updated} updated, " if report.updated else ""
    print(
        f"Indexed {len(corpus.files)} files into {out}: {report.added} chunks added, "
        f"{updated}{report.unchanged} unchanged, {report.removed} removed "
        f"({len(store.ids)} in the index)."
    )
    if corpus.duplicates:
        print(_duplicates_line(corpus))
    too_long = window_warning(corpus)
    if too_long:
        print(
            f"warning: {too_long}; use a smaller --chunk-size, or leave it out to "
            "cut chunks to the window.",
            file=sys.stderr,
        )
    if corpus.skipped:
        _print_skipped(corpus.skipped)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `index` command."""
    suffixes = ", ".join(SUPPORTED_SUFFIXES)
    index = commands.add_parser(
        "index",
        help=f"index {suffixes} files into a folder",
        description=(
            f"Read {suffixes} files (JSONL rows: id, text, optional metadata; a "
            "BEIR corpus.jsonl works as it is), split them into chunks, embed "
            "them and save a FAISS index. Files of other types are listed as "
            "skipped; hidden files and folders are not searched. Re-running on the "
            "same paths embeds only what changed and removes chunks of changed "
            "or deleted files."
        ),
    )
    index.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files or folders (searched recursively)",
    )
    index.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="index folder: created, or updated when it holds an index (required)",
    )
    index.add_argument(
        "--chunk-size",
        metavar="N",
        type=positive,
        help=(
            "characters per chunk (default: the embedding model's window, in its "
            "own tokens; a warning says what share of chunks run past it)"
        ),
    )
    index.add_argument(
        "--chunk-overlap",
        metavar="N",
        type=int,
        help=(
            "shared by neighbouring chunks: characters with --chunk-size, else "
            f"tokens (default: {DEFAULT_CHUNK_OVERLAP} characters, or "
            f"{DEFAULT_OVERLAP_FRACTION:.0%}% of the window)"
        ),
    )
    index.add_argument(
        "--no-dedupe",
        dest="dedupe",
        action="store_false",
        help=(
            "keep every copy of a chunk whose text appears more than once; by "
            "default copies are merged into the first and their sources kept in "
            "metadata['duplicate_sources']"
        ),
    )
    index.add_argument(
        "--embedding",
        metavar="MODEL_OR_PATH",
        help=(
            "bi-encoder: a Hugging Face id or a local folder (default: the "
            f"index's own, else {DEFAULT_EMBEDDING_MODEL})"
        ),
    )
    index.add_argument(
        "--batch-size",
        metavar="N",
        type=positive,
        default=64,
        help="chunks embedded per batch (default: %(default)s)",
    )
    index.add_argument("--device", help=DEVICE_HELP)
    index.set_defaults(func=_cmd_index)
