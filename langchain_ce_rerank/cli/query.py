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

    from langchain_ce_rerank.compressor import CrossEncoderCompressor
    from langchain_ce_rerank.engine import ScoreCalibration

from langchain_ce_rerank.cli._common import (
    SNIPPET,
    CliError,
    add_reranker_options,
    blame,
    check_index_folder,
    check_input_file,
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

    calibrated = any("relevance_probability" in row for row in rows)
    columns = [
        FittedColumn("move"),
        FittedColumn("rerank score"),
        *([FittedColumn("probability")] if calibrated else []),
        FittedColumn("cosine"),
        FittedColumn("source", justify="left", shrink="start", keep=20),
        FittedColumn("snippet", justify="left", shrink="end", limit=SNIPPET, keep=20),
    ]
    cells = [
        [
            f"{row['retrieval_rank']} -> {row['rank']}",
            f"{row['relevance_score']:.3f}",
            *([f"{row['relevance_probability']:.3f}"] if calibrated else []),
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
            **{
                key: doc.metadata[key]
                for key in ("relevance_probability", "fused_score")
                if key in doc.metadata
            },
            "source": doc.metadata.get("source"),
            "text": doc.page_content,
        }
        for rank, doc in enumerate(reranked, start=1)
    ]


def _read_calibration(args: argparse.Namespace) -> ScoreCalibration | None:
    """The `--calibration` file, read and checked; cheap (no model yet)."""
    if args.calibration is None:
        if args.min_probability is not None:
            msg = (
                f"--min-probability {args.min_probability:g} needs --calibration "
                "FILE, which maps the reranker's scores to probabilities; fit one "
                "with: ce-rerank eval --dataset DIR --calibrate FILE (with the "
                "same --reranker), or leave --min-probability out"
            )
            raise CliError(msg)
        return None
    check_input_file("--calibration", args.calibration)
    from langchain_ce_rerank.engine import ScoreCalibration

    with blame("--calibration"):
        return ScoreCalibration.load(args.calibration)


def _calibrated(
    compressor: CrossEncoderCompressor,
    calibration: ScoreCalibration | None,
    args: argparse.Namespace,
) -> CrossEncoderCompressor:
    """The reranker with the calibration, refused if fitted for another one."""
    if calibration is None:
        return compressor
    with blame(
        f"--calibration {args.calibration}",
        "pass the --reranker and options it was fitted with, or fit one for "
        "these with: ce-rerank eval --calibrate FILE",
    ):
        return compressor.model_copy(
            update={
                "calibration": calibration,
                "min_probability": args.min_probability,
            }
        )


def _empty_reason(
    compressor: CrossEncoderCompressor,
    candidates: Sequence[Document],
    args: argparse.Namespace,
) -> str | None:
    """Why `--min-probability` left nothing, in a sentence; None if it did not."""
    if args.min_probability is None or not candidates:
        return None
    # The same order without the probability cut: what it dropped (cached scores).
    scored = compressor.score_documents(candidates, args.question)
    before = compressor.order(candidates, scored, min_probability=None)
    if not before:
        return None
    best = max(doc.metadata["relevance_probability"] for doc in before)
    return (
        f"No document reached --min-probability {args.min_probability:g}: the "
        f"best of the {len(before)} reranked candidates has a relevance "
        f"probability of {best:.3f} (calibration {args.calibration}). Lower "
        "--min-probability to see weaker matches, or rephrase the question."
    )


def _cmd_query(args: argparse.Namespace) -> int:
    if not args.question.strip():
        msg = (
            f"QUESTION is blank ({args.question!r}); pass the text to search for: "
            'ce-rerank query INDEX_DIR "how do I ...?"'
        )
        raise CliError(msg)
    check_index_folder("INDEX_DIR", args.index)
    calibration = _read_calibration(args)
    compressor = _calibrated(prepare_reranker(args), calibration, args)
    store = load_index("INDEX_DIR", args)
    load_reranker(compressor)
    candidates = store.as_retriever(k=args.k).invoke(args.question)
    with reranking():
        reranked = compressor.compress_documents(candidates, args.question)
    rows = _query_rows(candidates, reranked)
    empty_reason = None if reranked else _empty_reason(compressor, candidates, args)
    if args.json:
        payload = {
            "query": args.question,
            "k": args.k,
            "top_n": args.top_n,
            "reranker": str(args.reranker),
            **(
                {
                    "calibration": args.calibration,
                    "min_probability": args.min_probability,
                }
                if calibration is not None
                else {}
            ),
            "first_stage": [
                {
                    "id": d.id,
                    "rank": d.metadata["retrieval_rank"],
                    "score": d.metadata["retrieval_score"],
                }
                for d in candidates
            ],
            "results": rows,
            **({"empty_reason": empty_reason} if empty_reason else {}),
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    console = rich_console()
    if empty_reason is not None:
        console.print(args.question)
        console.print(empty_reason)
        return 0
    table = _table(args.question, reranked, rows, console.width)
    console.print(table)
    kept = (
        f" with a relevance probability of at least {args.min_probability:g}"
        if args.min_probability is not None
        else ""
    )
    console.print(
        f"{len(candidates)} first-stage candidates reranked by {args.reranker}; "
        f"top {len(reranked)} shown{kept} (move = first-stage rank -> final rank)."
    )
    return 0


def _probability(value: str) -> float:
    """An argparse `type`: a probability from 0 to 1."""
    number = float(value)
    if not 0.0 <= number <= 1.0:
        msg = f"must be a probability from 0 to 1, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return number


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
    calibrated = query.add_argument_group("relevance probability")
    calibrated.add_argument(
        "--calibration",
        metavar="FILE",
        help=(
            "a calibration fitted for --reranker by 'ce-rerank eval --calibrate "
            "FILE': shows each result's probability of being relevant "
            "(default: none)"
        ),
    )
    calibrated.add_argument(
        "--min-probability",
        metavar="P",
        type=_probability,
        help=(
            "drop results whose relevance probability is below P, from 0 to 1 "
            "(after --top-n); needs --calibration (default: keep all)"
        ),
    )
    query.set_defaults(func=_cmd_query)
