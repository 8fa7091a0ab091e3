"""`ce-rerank query`: ask a question, see what the reranker changed."""

from __future__ import annotations

import argparse
import json
import math
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
            "not scored"
            if row["relevance_score"] is None
            else f"{row['relevance_score']:.3f}",
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
            # None for a candidate the deadline left unscored (reranked: false).
            "relevance_score": doc.metadata.get("relevance_score"),
            "reranked": doc.metadata.get("reranked", True),
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
    # Diversity compares the first stage's own vectors: ask FAISS for them.
    vectors = {"include_embeddings": True} if args.diversity > 0 else {}
    candidates = store.as_retriever(k=args.k, **vectors).invoke(args.question)
    with reranking():
        reranked = compressor.compress_documents(
            candidates,
            args.question,
            diversity=args.diversity,
            deadline_ms=args.deadline_ms,
        )
    rows = _query_rows(candidates, reranked)
    if args.json:
        payload = {
            "query": args.question,
            "k": args.k,
            "top_n": args.top_n,
            "diversity": args.diversity,
            "deadline_ms": args.deadline_ms,
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
    unscored = sum(not row["reranked"] for row in rows)
    if unscored:
        console.print(
            f"{unscored} of them not scored within --deadline-ms "
            f"{args.deadline_ms:g}: shown last, in first-stage order."
        )
    if args.diversity > 0:
        console.print(
            f"Ordered for diversity {args.diversity:g} (maximal marginal "
            "relevance over the first stage's embeddings)."
        )
    return 0


def _diversity(value: str) -> float:
    """An argparse `type`: a number from 0 to 1."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0.0 <= number <= 1.0:
        msg = f"must be a number from 0 (off) to 1, got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _milliseconds(value: str) -> float:
    """An argparse `type`: a number of milliseconds above 0."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 < number < math.inf:
        msg = f"must be a finite number of milliseconds above 0, got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _add_shaping_options(parser: argparse.ArgumentParser) -> None:
    """`--diversity` and `--deadline-ms`: what the reranker hands back."""
    group = parser.add_argument_group("shaping the results")
    group.add_argument(
        "--diversity",
        metavar="LAMBDA",
        type=_diversity,
        default=0.0,
        help=(
            "0 to 1: pick results by maximal marginal relevance, trading the "
            "reranker's score for unlikeness to results already picked "
            "(first-stage embeddings; 0.3 to 0.5 is usual; default: "
            "%(default)s, off)"
        ),
    )
    group.add_argument(
        "--deadline-ms",
        metavar="MS",
        type=_milliseconds,
        help=(
            "time budget for reranking: candidates are scored in first-stage "
            "order until the next batch would pass it; the rest are shown "
            "unscored, in first-stage order (default: none)"
        ),
    )


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
    _add_shaping_options(query)
    query.set_defaults(func=_cmd_query)
