"""`ce-rerank query`: ask a question, see what the reranker changed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from rich.table import Table

from langchain_ce_rerank.cli._common import (
    SNIPPET,
    CliError,
    add_reranker_options,
    check_index_folder,
    load_index,
    load_reranker,
    one_line,
    positive,
    prepare_reranker,
    reranking,
    rich_console,
)

_DROPPED = {
    "top_n": "past --top-n",
    "score_threshold": "under the score threshold",
    "group_full": "their --group-by group full",
    "context_budget": "over --max-context-tokens",
}
"""How the summary line names each drop reason, in the command's own flags."""


def _display_source(doc: Document) -> str:
    """The source path, relative when under the working folder, else shortened."""
    source = str(doc.metadata.get("source", ""))
    if not source:
        return ""
    path = Path(source)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(Path("…", *path.parts[-2:])) if len(path.parts) > 2 else source


def _table(
    question: str,
    reranked: Sequence[Document],
    rows: Sequence[dict[str, Any]],
    width: int,
) -> Table:
    """The results table, `width` cells at most: only source and snippet shrink."""
    from langchain_ce_rerank.display.render import FittedColumn, fitted_table

    columns = [
        FittedColumn("move"),
        FittedColumn("rerank score"),
        FittedColumn("cosine"),
        FittedColumn("source", justify="left", shrink="start", keep=20),
        FittedColumn("snippet", justify="left", shrink="end", limit=SNIPPET, keep=20),
    ]
    cells = [
        [
            f"{row['retrieval_rank']} -> {row['rank']}",
            f"{row['relevance_score']:.3f}",
            f"{row['retrieval_score']:.3f}",
            _display_source(doc),
            " ".join(doc.page_content.split()),
        ]
        for doc, row in zip(reranked, rows, strict=True)
    ]
    return fitted_table(columns, cells, width, title=question)


_SHOWN = (
    "fused_score",
    "relevance_passage",
    "context_tokens",
    "context_cut",
    "parent_chunks",
    "best_chunk_span",
)
"""Metadata a result row carries in --json when the reranker wrote it."""


def _query_rows(
    candidates: Sequence[Document], reranked: Sequence[Document]
) -> list[dict[str, Any]]:
    return [
        {
            "id": doc.id,
            "rank": rank,
            "retrieval_rank": doc.metadata["retrieval_rank"],
            "retrieval_score": doc.metadata["retrieval_score"],
            "relevance_score": doc.metadata["relevance_score"],
            **{key: doc.metadata[key] for key in _SHOWN if key in doc.metadata},
            "source": doc.metadata.get("source"),
            "text": doc.page_content,
        }
        for rank, doc in enumerate(reranked, start=1)
    ]


def _shaping(args: argparse.Namespace) -> dict[str, Any]:
    """The compressor settings of the shaping flags, checked before slow work."""
    if args.max_per_group is not None and args.group_by is None and not args.parents:
        msg = (
            f"--max-per-group {args.max_per_group} needs --group-by KEY: the "
            "metadata field that names each chunk's group, e.g. --group-by source"
        )
        raise CliError(msg)
    if args.max_per_group is not None and args.parents:
        msg = (
            "--max-per-group does not apply with --parents: each source file "
            "becomes one result; leave --max-per-group out"
        )
        raise CliError(msg)
    settings: dict[str, Any] = {
        "group_by": args.group_by,
        "max_per_group": args.max_per_group,
        "max_context_tokens": args.max_context_tokens,
    }
    if args.parents:
        from langchain_ce_rerank.parents import SourceFiles

        # A whole file is longer than the model's window: score its windows.
        settings |= {"parents": SourceFiles(), "long_documents": "max_passage"}
    return settings


def _drop_summary(dropped: Sequence[Document]) -> str:
    counts: dict[str, int] = {}
    for doc in dropped:
        reason = str(doc.metadata["drop_reason"])
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(
        f"{count} {_DROPPED.get(reason, reason)}" for reason, count in counts.items()
    )


def _cmd_query(args: argparse.Namespace) -> int:
    if not args.question.strip():
        msg = (
            f"QUESTION is blank ({args.question!r}); pass the text to search for: "
            'ce-rerank query INDEX_DIR "how do I ...?"'
        )
        raise CliError(msg)
    check_index_folder("INDEX_DIR", args.index)
    compressor = prepare_reranker(args, **_shaping(args))
    compressor._parents_remedy = (
        "its file is gone or unreadable since it was indexed: index it again "
        "(ce-rerank index), or leave out --parents"
    )
    store = load_index("INDEX_DIR", args)
    load_reranker(compressor)
    candidates = store.as_retriever(k=args.k).invoke(args.question)
    with reranking():
        try:
            reranked, dropped = compressor.compress_documents_explained(
                candidates, args.question
            )
        except LookupError as err:
            raise CliError(f"--parents: {one_line(err)}") from err
        except ValueError as err:
            if "group_by=" not in str(err):
                raise
            raise CliError(f"--group-by {args.group_by}: {one_line(err)}") from err
    rows = _query_rows(candidates, reranked)
    if args.json:
        payload = {
            "query": args.question,
            "k": args.k,
            "top_n": args.top_n,
            "reranker": str(args.reranker),
            "first_stage": [
                {
                    "id": d.id,
                    "rank": d.metadata["retrieval_rank"],
                    "score": d.metadata["retrieval_score"],
                }
                for d in candidates
            ],
            "results": rows,
            "dropped": [
                {
                    "id": d.id,
                    "retrieval_rank": d.metadata.get("retrieval_rank"),
                    "relevance_score": d.metadata["relevance_score"],
                    "reason": d.metadata["drop_reason"],
                }
                for d in dropped
            ],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    console = rich_console()
    table = _table(args.question, reranked, rows, console.width)
    console.print(table)
    reranked_what = (
        f"{len(candidates)} first-stage candidates"
        if not args.parents
        else f"the source files of {len(candidates)} first-stage chunks"
    )
    not_shown = f"; not shown: {_drop_summary(dropped)}" if dropped else ""
    console.print(
        f"{reranked_what} reranked by {args.reranker}; "
        f"top {len(reranked)} shown (move = first-stage rank -> final rank)"
        f"{not_shown}."
    )
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `query` command."""
    query = commands.add_parser(
        "query",
        help="ask a question and see what the reranker changed",
        description=(
            "Retrieve k candidates from an index, rerank them with a cross-encoder "
            "and show the final order with each document's movement, scores, "
            "source and snippet."
        ),
    )
    query.add_argument(
        "index", metavar="INDEX_DIR", help="folder written by 'ce-rerank index'"
    )
    query.add_argument("question", metavar="QUESTION", help="the query text")
    query.add_argument(
        "--json",
        action="store_true",
        help="print machine-readable JSON instead of a table (default: off)",
    )
    query.add_argument(
        "--embedding",
        metavar="MODEL_OR_PATH",
        help=(
            "bi-encoder that embeds the question, e.g. a local copy of the one "
            "the index was built with (default: the one the index records)"
        ),
    )
    add_reranker_options(query)
    shaping = query.add_argument_group("shaping the context")
    shaping.add_argument(
        "--group-by",
        metavar="KEY",
        help=(
            "keep the best results per group, a metadata field of the chunks: "
            "source (one per file), doc_id (one per JSONL row or file) "
            "(default: no grouping)"
        ),
    )
    shaping.add_argument(
        "--max-per-group",
        metavar="N",
        type=positive,
        help="results kept per --group-by group (default: 1)",
    )
    shaping.add_argument(
        "--max-context-tokens",
        metavar="N",
        type=positive,
        help=(
            "show results in order while their text fits N tokens of the "
            "reranker's tokenizer; one alone over N is cut to its best window "
            "(default: no budget)"
        ),
    )
    shaping.add_argument(
        "--parents",
        action="store_true",
        help=(
            "rerank and show the whole source file of the chunks found, one "
            "per file, scored as its best window; the files are read again "
            "from where 'ce-rerank index' found them, and one changed or "
            "gone since is an error (default: off)"
        ),
    )
    query.set_defaults(func=_cmd_query)
