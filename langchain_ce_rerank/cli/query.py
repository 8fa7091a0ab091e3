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
    prepare_reranker,
    reranking,
    rich_console,
)


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
            **(
                {"fused_score": doc.metadata["fused_score"]}
                if "fused_score" in doc.metadata
                else {}
            ),
            "source": doc.metadata.get("source"),
            "text": doc.page_content,
        }
        for rank, doc in enumerate(reranked, start=1)
    ]


def _cmd_query(args: argparse.Namespace) -> int:
    if not args.question.strip():
        msg = (
            f"QUESTION is blank ({args.question!r}); pass the text to search for: "
            'ce-rerank query INDEX_DIR "how do I ...?"'
        )
        raise CliError(msg)
    check_index_folder("INDEX_DIR", args.index)
    compressor = prepare_reranker(args)
    store = load_index("INDEX_DIR", args)
    load_reranker(compressor)
    candidates = store.as_retriever(k=args.k).invoke(args.question)
    with reranking():
        reranked = compressor.compress_documents(candidates, args.question)
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
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    console = rich_console()
    table = _table(args.question, reranked, rows, console.width)
    console.print(table)
    console.print(
        f"{len(candidates)} first-stage candidates reranked by {args.reranker}; "
        f"top {len(reranked)} shown (move = first-stage rank -> final rank)."
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
    query.set_defaults(func=_cmd_query)
