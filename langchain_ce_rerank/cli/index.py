"""`ce-rerank index`: split, embed and save files into an index folder."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
from langchain_ce_rerank.ingest import (
    BINARY,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_OVERLAP_FRACTION,
    SyncReport,
    window_warning,
)
from langchain_ce_rerank.models import DEFAULT_EMBEDDING_MODEL

if TYPE_CHECKING:
    from langchain_ce_rerank.ingest import Corpus


def _shown(path: str) -> str:
    """A path relative to the working folder when it is under it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _count(number: int, noun: str) -> str:
    """`1 file`, `2 files`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _listing(names: Sequence[str], noun: str = "files") -> str:
    if len(names) > 4:
        return f"{', '.join(names[:3])} and {len(names) - 3} more {noun}"
    return (
        " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    )


def _kinds(skipped: Sequence[tuple[str, str]]) -> str:
    """`650 binary, 18 not UTF-8`: the skips counted by reason."""
    counts: dict[str, int] = {}
    for _, reason in skipped:
        kind = "binary" if reason == BINARY else reason.split(" (")[0]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{number} {kind}" for kind, number in counts.items())


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


def _print_skipped(skipped: Sequence[tuple[str, str]], *, verbose: bool) -> None:
    """The skips counted by reason, then each one (the first few without -v)."""
    print(f"Skipped {len(skipped)} ({_kinds(skipped)}):", file=sys.stderr)
    shown = skipped if verbose else skipped[:LISTED]
    for where, reason in shown:
        print(f"  {_shown(where)}: {reason}", file=sys.stderr)
    if len(skipped) > len(shown):
        print(
            f"  ... and {len(skipped) - len(shown)} more (--verbose lists them all)",
            file=sys.stderr,
        )


def _stored_metadata(out: Path) -> dict[str, dict[str, object]]:
    """{chunk id: metadata} of a saved index, read without an embedding model."""
    from langchain_ce_rerank.store import persistence

    return {record.id: record.metadata for record in persistence.load(out).records}


def _bm25_line(bm25: bool) -> str:
    """What changing an existing index's keyword index did, and what it means."""
    if bm25:
        return (
            "Built its BM25 keyword index (--bm25): ce-rerank query now searches "
            "hybrid (dense and BM25, fused) by default."
        )
    return (
        "Removed its BM25 keyword index (--no-bm25): ce-rerank query now "
        "searches by embedding only (--first-stage dense)."
    )


def _report(
    corpus: Corpus,
    out: Path,
    report: SyncReport,
    total: int,
    *,
    verbose: bool,
    bm25_changed: bool | None = None,
) -> None:
    """`Indexed 1 file into ix: 1 chunk added, ...`, merges, then the skips.

    `bm25_changed`: the keyword index an existing index was switched to, if
    it was (True: built, False: removed).
    """
    updated = f"{report.updated} updated, " if report.updated else ""
    print(
        f"Indexed {_count(len(corpus.files), 'file')} into {out}: "
        f"{_count(report.added, 'chunk')} added, {updated}{report.unchanged} "
        f"unchanged, {report.removed} removed ({total} in the index)."
    )
    if bm25_changed is not None:
        print(_bm25_line(bm25_changed))
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
        _print_skipped(corpus.skipped, verbose=verbose)


def _empty_corpus(args: argparse.Namespace, corpus: Corpus) -> str:
    """One line saying why nothing was read, however many paths were given."""
    found = []
    if corpus.skipped:
        where, reason = corpus.skipped[0]
        found.append(
            f"{len(corpus.skipped)} skipped: {_kinds(corpus.skipped)}; "
            f"first: {_shown(where)}: {reason}"
        )
    if corpus.excluded:
        found.append(
            f"{_count(len(corpus.excluded), 'file')} left out by --include/--exclude"
        )
    details = f" ({'; '.join(found)})" if found else ""
    return (
        f"PATH: no text files under {_listing(args.paths, 'paths')}{details}; "
        "empty corpus, nothing was written"
    )


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
        plan_sync,
        sync_store,
    )

    with blame("PATH"):
        find_files(args.paths)  # before FAISS, numpy, LangChain or a model load
    start_over = f"write to a new --out folder, or delete {args.out} to rebuild it"
    recorded = None
    bm25 = True if args.bm25 is None else bool(args.bm25)
    bm25_changed = None
    if existing:
        from langchain_ce_rerank.store import has_bm25_index

        with blame("--out", start_over):
            recorded = recorded_embedding(out)
            kept = has_bm25_index(out)
        # An existing index keeps its keyword index unless a flag says otherwise.
        bm25 = kept if args.bm25 is None else bool(args.bm25)
        bm25_changed = None if bm25 == kept else bm25
    model = args.embedding or recorded or DEFAULT_EMBEDDING_MODEL
    if recorded and model != recorded:
        msg = (
            f"--out {args.out} was built with {recorded!r}, not {model!r}; pass "
            f"--embedding {recorded} or write to a new --out folder"
        )
        raise CliError(msg)
    find_model("--embedding", model)  # found (not loaded) before any heavy work
    from langchain_ce_rerank.models import load_embeddings, load_token_window

    # Chunks are cut to the model's window, read from its tokenizer alone: the
    # weights load only when some chunk must be embedded.
    embeddings = None
    with blame("--embedding"):
        window = load_token_window(model)
        if window is None:  # no recorded window: the loaded model knows it
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
            embedding=embeddings or window,
            chunk_size=args.chunk_size,
            chunk_overlap=overlap,
            dedupe=args.dedupe,
            include=args.include,
            exclude=args.exclude,
        )
    if not corpus.documents:
        if args.verbose and corpus.skipped:
            _print_skipped(corpus.skipped, verbose=True)
        raise CliError(_empty_corpus(args, corpus))
    # Chunk ids hash their text: what is stored already is known without a model.
    with blame("--out", start_over):
        stored = _stored_metadata(out) if existing else {}
    plan = plan_sync(stored, corpus, args.paths)
    if plan.nothing_to_do and bm25_changed is None:
        report = SyncReport(added=0, unchanged=plan.unchanged, removed=0)
        _report(corpus, out, report, len(stored), verbose=args.verbose)
        return 0
    from tqdm import tqdm

    from langchain_ce_rerank.store import new_index, open_index

    if embeddings is None:
        with blame("--embedding"):
            embeddings = load_embeddings(model, device=args.device)
    with blame("--out", start_over):
        store = (
            open_index(out, embeddings, bm25=bm25)
            if existing
            else new_index(embeddings, bm25=bm25)
        )
    # A bar for the chunks embedded, on a terminal only (disable=None).
    with tqdm(
        total=plan.to_embed,
        desc="Embedding",
        unit="chunk",
        file=sys.stderr,
        disable=None if plan.to_embed else True,
    ) as bar:
        report = sync_store(
            store, corpus, args.paths, batch_size=args.batch_size, progress=bar.update
        )
    with blame("--out"):
        store.save_local(out)  # builds the BM25 index, when it has one
    _report(
        corpus,
        out,
        report,
        len(store.ids),
        verbose=args.verbose,
        bm25_changed=bm25_changed,
    )
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `index` command."""
    index = commands.add_parser(
        "index",
        help="index text files into a folder",
        description=(
            "Read every text file (UTF-8, whatever its name; JSONL rows: id, "
            "text, optional metadata, and a BEIR corpus.jsonl works as it is), "
            "split them into chunks, embed them and save a FAISS index. "
            "A BM25 keyword index is kept beside it unless --no-bm25. "
            "Binary and non-UTF-8 files are counted as skipped; hidden files "
            "and folders are not searched. Re-running on the same paths embeds "
            "only what changed, removes chunks of changed or deleted files, and "
            "loads no model when nothing changed."
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
        "--include",
        metavar="GLOB",
        action="append",
        default=[],
        help=(
            "read only files whose name or path under PATH matches; repeat for "
            "more, e.g. --include '*.md' --include copyright (default: every "
            "text file)"
        ),
    )
    index.add_argument(
        "--exclude",
        metavar="GLOB",
        action="append",
        default=[],
        help="leave out files whose name or path under PATH matches; repeatable",
    )
    index.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help=f"list every skipped file (default: the first {LISTED} and a count)",
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
        "--bm25",
        action=argparse.BooleanOptionalAction,
        help=(
            "keep a BM25 keyword index beside the vectors, for query "
            "--first-stage hybrid or bm25 (default: on for a new index; an "
            "existing index keeps its own: --no-bm25 removes its keyword "
            "index, --bm25 builds one, without re-embedding anything)"
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
