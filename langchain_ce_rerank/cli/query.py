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
    one_line,
    prepare_reranker,
    reranking,
    rich_console,
)
from langchain_ce_rerank.cli.query_context import (
    SHOWN,
    add_context_options,
    context_settings,
    drop_summary,
)

FIRST_STAGES = ("dense", "bm25", "hybrid")
"""`--first-stage` choices: embedding search, keyword search, or both fused."""
_SEARCH_TYPES = {"dense": "similarity", "bm25": "bm25", "hybrid": "hybrid"}
_HYBRID_FLAGS = ("--alpha", "--hybrid-fusion")
_SIDES = ("dense_rank", "dense_score", "bm25_rank", "bm25_score")


def _alpha(value: str) -> float:
    """An argparse `type`: the dense side's weight, a number from 0 to 1."""
    try:
        number = float(value)
    except ValueError:
        msg = f"must be a number from 0 to 1, got {value!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not 0.0 <= number <= 1.0:  # NaN fails too
        msg = f"must be from 0 (BM25 only) to 1 (dense only), got {value}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _first_stage(args: argparse.Namespace) -> str:
    """`--first-stage`, else hybrid when the index has BM25; checked cheaply.

    Reads the index's manifest only: no model and no index is loaded yet.
    """
    given = [
        flag
        for flag, value in zip(
            _HYBRID_FLAGS, (args.alpha, args.hybrid_fusion), strict=True
        )
        if value is not None
    ]
    if given and args.first_stage in ("dense", "bm25"):
        msg = (
            f"{given[0]} applies to --first-stage hybrid only, not "
            f"--first-stage {args.first_stage}; drop {given[0]}, or pass "
            "--first-stage hybrid"
        )
        raise CliError(msg)
    check_index_folder("INDEX_DIR", args.index)
    from langchain_ce_rerank.store import has_bm25_index

    with blame(
        "INDEX_DIR", f"rebuild it with: ce-rerank index PATHS... --out {args.index}"
    ):
        has_bm25 = has_bm25_index(args.index)
    if has_bm25:
        return str(args.first_stage or "hybrid")
    if args.first_stage in ("bm25", "hybrid") or given:
        asked = (
            f"--first-stage {args.first_stage}"
            if args.first_stage
            else f"{given[0]} (for --first-stage hybrid)"
        )
        msg = (
            f"{asked} needs a BM25 keyword index, but INDEX_DIR {args.index!r} "
            "has none (it was indexed with --no-bm25); pass --first-stage dense, "
            f"or add one with: ce-rerank index PATHS... --out {args.index} --bm25"
        )
        raise CliError(msg)
    return "dense"


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
    first_stage: str = "dense",
) -> Table:
    """The results table, `width` cells at most: only source and snippet shrink.

    A dense first stage shows the cosine; bm25 and hybrid show each side's
    score (a column none of the rows has is left out) and which side found
    each candidate. With a calibration, a probability column follows the
    rerank score (blank for a candidate the deadline left unscored).
    """
    from langchain_ce_rerank.display.first_stage import found_by
    from langchain_ce_rerank.display.render import (
        FittedColumn,
        fitted_table,
        score_text,
    )

    calibrated = any("relevance_probability" in row for row in rows)
    header = ["move", "rerank score", *(["probability"] if calibrated else [])]
    cells = [
        [
            f"{row['retrieval_rank']} -> {row['rank']}",
            "not scored"
            if row["relevance_score"] is None
            else f"{row['relevance_score']:.3f}",
            *(
                [
                    f"{row['relevance_probability']:.3f}"
                    if "relevance_probability" in row
                    else ""
                ]
                if calibrated
                else []
            ),
        ]
        for row in rows
    ]
    if first_stage == "dense":
        header.append("cosine")
        for cell, row in zip(cells, rows, strict=True):
            cell.append(f"{row['retrieval_score']:.3f}")
    else:
        for name, key in (("cosine", "dense_score"), ("bm25", "bm25_score")):
            if any(row.get(key) is not None for row in rows):
                header.append(name)
                for cell, row in zip(cells, rows, strict=True):
                    cell.append(score_text(row.get(key)))
        header.append("found by")
        for cell, doc in zip(cells, reranked, strict=True):
            cell.append(found_by(doc.metadata) or "")
    columns = [FittedColumn(name) for name in header] + [
        FittedColumn("source", justify="left", shrink="start", keep=20),
        FittedColumn("snippet", justify="left", shrink="end", limit=SNIPPET, keep=20),
    ]
    for cell, doc in zip(cells, reranked, strict=True):
        cell += [_display_source(doc), " ".join(doc.page_content.split())]
    return fitted_table(columns, cells, width, title=question)


def _sides(doc: Document, first_stage: str) -> dict[str, Any]:
    """Each side's rank and score (None where that side did not find it)."""
    meta = doc.metadata
    if first_stage == "dense":  # one side: its rank and score are the stage's
        return {
            "dense_rank": meta["retrieval_rank"],
            "dense_score": meta["retrieval_score"],
            "bm25_rank": None,
            "bm25_score": None,
        }
    return {key: meta.get(key) for key in _SIDES}


def _query_rows(reranked: Sequence[Document], first_stage: str) -> list[dict[str, Any]]:
    return [
        {
            "id": doc.id,
            "rank": rank,
            "retrieval_rank": doc.metadata["retrieval_rank"],
            "retrieval_score": doc.metadata["retrieval_score"],
            **_sides(doc, first_stage),
            # None for a candidate the deadline left unscored (reranked: false).
            "relevance_score": doc.metadata.get("relevance_score"),
            "reranked": doc.metadata.get("reranked", True),
            **{key: doc.metadata[key] for key in SHOWN if key in doc.metadata},
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
    candidates = compressor.candidates(candidates)
    scored = compressor.score_documents(candidates, args.question)
    before = compressor.order(
        candidates, scored, diversity=args.diversity, min_probability=None
    )
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
    kind = _first_stage(args)
    calibration = _read_calibration(args)
    compressor = _calibrated(
        prepare_reranker(args, **context_settings(args)), calibration, args
    )
    compressor._parents_remedy = (
        "its file is gone or unreadable since it was indexed: index it again "
        "(ce-rerank index), or leave out --parents"
    )
    store = load_index("INDEX_DIR", args)
    load_reranker(compressor)
    options: dict[str, Any] = {"k": args.k, "search_type": _SEARCH_TYPES[kind]}
    if args.alpha is not None:
        options["alpha"] = args.alpha
    if args.hybrid_fusion is not None:
        options["fusion"] = args.hybrid_fusion
    if args.diversity > 0:
        # Diversity compares the first stage's own vectors: ask FAISS for them.
        options["include_embeddings"] = True
    retriever = store.as_retriever(**options)
    # The retriever's own defaults, as it ran (hybrid only).
    alpha = getattr(retriever, "alpha", None) if kind == "hybrid" else None
    fusion = getattr(retriever, "fusion", None) if kind == "hybrid" else None
    candidates = retriever.invoke(args.question)
    with reranking():
        try:
            reranked, dropped = compressor.compress_documents_explained(
                candidates,
                args.question,
                diversity=args.diversity,
                deadline_ms=args.deadline_ms,
            )
        except LookupError as err:
            raise CliError(f"--parents: {one_line(err)}") from err
        except ValueError as err:
            if "group_by=" not in str(err):
                raise
            raise CliError(f"--group-by {args.group_by}: {one_line(err)}") from err
    rows = _query_rows(reranked, kind)
    empty_reason = None if reranked else _empty_reason(compressor, candidates, args)
    if args.json:
        payload = {
            "query": args.question,
            "k": args.k,
            "top_n": args.top_n,
            "diversity": args.diversity,
            "deadline_ms": args.deadline_ms,
            "reranker": str(args.reranker),
            "instruction": args.instruction,
            **(
                {
                    "calibration": args.calibration,
                    "min_probability": args.min_probability,
                }
                if calibration is not None
                else {}
            ),
            "first_stage_kind": kind,
            "hybrid_fusion": fusion,
            "alpha": alpha,
            "first_stage": [
                {
                    "id": d.id,
                    "rank": d.metadata["retrieval_rank"],
                    "score": d.metadata["retrieval_score"],
                    **_sides(d, kind),
                }
                for d in candidates
            ],
            "results": rows,
            "dropped": [
                {
                    "id": d.id,
                    "retrieval_rank": d.metadata.get("retrieval_rank"),
                    "relevance_score": d.metadata.get("relevance_score"),
                    "reranked": d.metadata.get("reranked", True),
                    "reason": d.metadata["drop_reason"],
                }
                for d in dropped
            ],
            **({"empty_reason": empty_reason} if empty_reason else {}),
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    console = rich_console()
    if empty_reason is not None:
        console.print(args.question)
        console.print(empty_reason)
        return 0
    table = _table(args.question, reranked, rows, console.width, kind)
    console.print(table)
    described = {
        "dense": "",
        "bm25": "BM25 ",
        "hybrid": f"hybrid ({fusion} of dense and BM25, alpha {alpha}) ",
    }[kind]
    reranked_what = (
        f"{len(candidates)} {described}first-stage candidates"
        if not args.parents
        else f"the source files of {len(candidates)} {described}first-stage chunks"
    )
    kept = (
        f" with a relevance probability of at least {args.min_probability:g}"
        if args.min_probability is not None
        else ""
    )
    found = (
        "; found by = the side that returned it and its rank there, both = "
        "dense/bm25 ranks"
        if kind != "dense"
        else ""
    )
    not_shown = f"; not shown: {drop_summary(dropped)}" if dropped else ""
    console.print(
        f"{reranked_what} reranked by {args.reranker}; top {len(reranked)} "
        f"shown{kept} (move = first-stage rank -> final rank{found}){not_shown}."
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


def _probability(value: str) -> float:
    """An argparse `type`: a probability from 0 to 1."""
    number = float(value)
    if not 0.0 <= number <= 1.0:
        msg = f"must be a probability from 0 to 1, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return number


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
    first = query.add_argument_group("first stage")
    first.add_argument(
        "--first-stage",
        choices=FIRST_STAGES,
        help=(
            "how candidates are found: dense (embedding search), bm25 (keyword "
            "search) or hybrid (both, fused); bm25 and hybrid need an index "
            "built without --no-bm25 (default: hybrid when the index has a BM25 "
            "keyword index, else dense)"
        ),
    )
    first.add_argument(
        "--alpha",
        type=_alpha,
        metavar="X",
        help=(
            "with hybrid: the dense side's weight from 0 to 1, BM25 gets 1 - X "
            "(default: 0.7, leaning on the dense side; 0.5 weighs them equally)"
        ),
    )
    first.add_argument(
        "--hybrid-fusion",
        choices=("rrf", "weighted"),
        help=(
            "with hybrid: rrf fuses the two rankings by rank (Reciprocal Rank "
            "Fusion), weighted sums min-max normalized scores (default: rrf)"
        ),
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
    add_context_options(query)
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
            "(after --top-n and --diversity; candidates --deadline-ms left "
            "unscored have none and are kept); needs --calibration "
            "(default: keep all)"
        ),
    )
    query.set_defaults(func=_cmd_query)
