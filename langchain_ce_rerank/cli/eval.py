"""`ce-rerank eval`: dense, BM25 and hybrid, alone, reranked and fused, on qrels."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, cast

from langchain_ce_rerank.cli.ray_options import add_ray_options, ray_scorer
from langchain_ce_rerank.models import DEFAULT_EMBEDDING_MODEL

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever
    from tqdm import tqdm

    from langchain_ce_rerank.compressor import CrossEncoderCompressor
    from langchain_ce_rerank.evaluation import (
        CalibrationReport,
        EvaluationReport,
        FirstStageName,
    )
from langchain_ce_rerank.cli._common import (
    CliError,
    add_reranker_options,
    blame,
    check_index_folder,
    check_input_file,
    find_model,
    load_index,
    load_reranker,
    one_line,
    prepare_reranker,
    reranking,
    rich_console,
)


def print_report(report: EvaluationReport) -> None:
    """Print `ce-rerank eval`'s table of a report on the terminal."""
    from langchain_ce_rerank.evaluation.rendering import report_table

    rich_console().print(report_table(report))


def print_calibration(
    report: CalibrationReport, path: str, first_stage: str | None = None
) -> None:
    """Print `ce-rerank eval --calibrate`'s tables and where the file went.

    `first_stage` names the first stage whose reranked candidates it was
    fitted on, when the evaluation measured several.
    """
    from langchain_ce_rerank.evaluation.rendering import calibration_tables

    console = rich_console()
    console.print()
    for part in calibration_tables(report):
        console.print(part)
    if first_stage is not None:
        console.print(
            f"Fitted on the reranker's scores of the {first_stage} first stage's "
            "candidates (the first one measured; --first-stage sets the order)."
        )
    console.print(
        f"Calibration written to {path}; use it with: ce-rerank query INDEX_DIR "
        f"QUESTION --calibration {path} --min-probability "
        f"{report.min_probability:g}"
    )


_BAR_NAMES = {"first stage": "First stage", "rerank": "Reranking"}
# The first stages `--first-stage` takes, as evaluation.FIRST_STAGES names
# them (a test keeps the two equal): the parser is built without importing
# LangChain.
FIRST_STAGE_CHOICES = ("dense", "bm25", "hybrid")


def _first_stage_names(value: str) -> list[str]:
    """`--first-stage` values: one name, or several separated by commas."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    for name in names or [value]:
        if name not in FIRST_STAGE_CHOICES:
            msg = (
                f"invalid choice: {name!r} (choose from "
                f"{', '.join(FIRST_STAGE_CHOICES)})"
            )
            raise argparse.ArgumentTypeError(msg)
    return names


def check_first_stages(args: argparse.Namespace) -> list[str] | None:
    """`--first-stage` as one list of names, each once; None when not given."""
    if args.first_stage is None:
        return None
    names = [name for group in args.first_stage for name in group]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        msg = f"--first-stage names {repeated[0]!r} twice; give each first stage once"
        raise CliError(msg)
    return names


def first_stages_for(
    retriever: BaseRetriever, names: list[str] | None, index: str | None
) -> tuple[FirstStageName, ...]:
    """The first stages to run on `retriever`: `names`, or what it can do.

    Raises:
        CliError: `names` asks for keyword search of an index without it.
    """
    from langchain_ce_rerank.evaluation.first_stages import (
        default_first_stages,
        keyword_search_available,
    )

    if names is None:
        return default_first_stages(retriever)
    keyword = [name for name in names if name != "dense"]
    if keyword and not keyword_search_available(retriever):
        where = f"--index {index!r}" if index else "this index"
        msg = (
            f"--first-stage {keyword[0]}: {where} has no keyword (BM25) index, "
            "so only --first-stage dense can run on it"
        )
        raise CliError(msg)
    return cast("tuple[FirstStageName, ...]", tuple(names))


class _StageBars:
    """A tqdm bar per stage of `evaluate` (queries done), on a terminal only.

    Passed as `evaluate(..., progress=bars)`; a stage's bar is closed when the
    next stage starts, and `close()` closes the last.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self._bar: tqdm[NoReturn] | None = None  # a bar without an iterable
        self._stage = ""

    def __call__(self, stage: str, queries: int) -> None:
        """Count `queries` more queries done in `stage`."""
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(
                total=self.total,
                desc=_BAR_NAMES.get(stage, stage),
                unit="query",
                file=sys.stderr,
                disable=None,  # no bar when stderr is not a terminal
            )
        assert self._bar is not None
        self._bar.update(queries)

    def close(self) -> None:
        """Close the bar of the current stage."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _eval_data(
    args: argparse.Namespace,
) -> tuple[Path | None, dict[str, str], dict[str, dict[str, int]]]:
    """Read and check the queries and qrels: no model yet, nor the corpus.

    Returns a BEIR dataset's corpus file, read once the models are found,
    or None for `--index`. Missing files fail before
    `langchain_ce_rerank.evaluation` (and with it LangChain) is imported.
    """
    if args.dataset:
        if args.index or args.queries or args.qrels:
            msg = (
                "--dataset already holds queries and qrels; "
                "do not add --index/--queries/--qrels"
            )
            raise CliError(msg)
        root = Path(args.dataset)
        layout = (
            "a BEIR folder holds corpus.jsonl, queries.jsonl and "
            f"qrels/{args.split}.tsv"
        )
        if root.is_file():
            msg = f"--dataset {args.dataset!r} is a file, not a folder; {layout}"
            raise CliError(msg)
        if not root.is_dir():
            msg = f"--dataset {args.dataset!r} does not exist; {layout}"
            raise CliError(msg)
        for name in ("corpus.jsonl", "queries.jsonl"):
            if not (root / name).is_file():
                msg = f"--dataset {args.dataset!r} has no {name}; {layout}"
                raise CliError(msg)
        if not (root / "qrels" / f"{args.split}.tsv").is_file():
            splits = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
            there = (
                f"pass one of: {', '.join(f'--split {s}' for s in splits)}"
                if splits
                else layout
            )
            msg = (
                f"--split {args.split!r}: {root / 'qrels' / args.split}.tsv "
                f"does not exist; {there}"
            )
            raise CliError(msg)
        from langchain_ce_rerank.evaluation import read_qrels, read_queries

        with blame("--dataset"):
            queries = read_queries(root / "queries.jsonl")
            qrels = read_qrels(root / "qrels" / f"{args.split}.tsv")
        corpus_file: Path | None = root / "corpus.jsonl"
        queries_flag = qrels_flag = "--dataset"
    elif args.index or args.queries or args.qrels:
        missing = [
            flag
            for flag, value in (
                ("--index DIR", args.index),
                ("--queries FILE", args.queries),
                ("--qrels FILE", args.qrels),
            )
            if not value
        ]
        if missing:
            msg = (
                "evaluating an index needs --index, --queries and --qrels; "
                f"add {' and '.join(missing)}"
            )
            raise CliError(msg)
        check_index_folder("--index", args.index)
        check_input_file("--queries", args.queries)
        check_input_file("--qrels", args.qrels)
        from langchain_ce_rerank.evaluation import read_qrels, read_queries

        with blame("--queries"):
            queries = read_queries(args.queries)
        with blame("--qrels"):
            qrels = read_qrels(args.qrels)
        corpus_file, queries_flag, qrels_flag = None, "--queries", "--qrels"
    else:
        msg = "give --dataset DIR, or --index DIR with --queries FILE and --qrels FILE"
        raise CliError(msg)
    blank = [qid for qid, text in queries.items() if not text.strip()]
    if blank:
        msg = f"{queries_flag}: query {blank[0]!r} is blank; every query needs text"
        raise CliError(msg)
    if not any(qid in qrels for qid in queries):
        msg = (
            f"no query id of {queries_flag} (e.g. {next(iter(queries), '')!r}) has "
            f"judgements in {qrels_flag} (e.g. {next(iter(qrels), '')!r}); their "
            "query ids must match"
        )
        raise CliError(msg)
    return corpus_file, queries, qrels


def _check_outputs(args: argparse.Namespace) -> None:
    if args.json and args.json != "-":
        target = Path(args.json)
        if target.is_dir():
            msg = (
                f"--json {args.json!r} is a folder; pass a file name, or '-' for stdout"
            )
            raise CliError(msg)
        if not target.parent.is_dir():
            msg = (
                f"--json {args.json!r}: "
                f"the folder {str(target.parent)!r} does not exist"
            )
            raise CliError(msg)
    _check_calibrate(args)
    if args.save_run and Path(args.save_run).is_file():
        msg = (
            f"--save-run {args.save_run!r} is a file; "
            "pass a folder (created if missing)"
        )
        raise CliError(msg)


_CALIBRATE_FLAGS = {
    "calibration_method": "--calibration-method",
    "holdout": "--holdout",
    "seed": "--seed",
    "min_probability": "--min-probability",
    "unjudged": "--unjudged",
}


def _check_calibrate(args: argparse.Namespace) -> None:
    """Cheap checks of `--calibrate FILE` and the options that go with it."""
    if args.calibrate is None:
        given = [
            flag
            for name, flag in _CALIBRATE_FLAGS.items()
            if getattr(args, name) is not None
        ]
        if given:
            msg = f"{', '.join(given)} set how --calibrate fits; add --calibrate FILE"
            raise CliError(msg)
        return
    target = Path(args.calibrate)
    if target.is_dir():
        msg = f"--calibrate {args.calibrate!r} is a folder; pass a file name"
        raise CliError(msg)
    if not target.parent.is_dir():
        msg = (
            f"--calibrate {args.calibrate!r}: "
            f"the folder {str(target.parent)!r} does not exist"
        )
        raise CliError(msg)
    if args.holdout is not None and not 0.0 <= args.holdout < 1.0:
        msg = (
            f"--holdout {args.holdout:g} must be from 0 (fit and report on every "
            "query) to below 1; 0.5 fits on half the queries and reports on the rest"
        )
        raise CliError(msg)


def _calibration(
    args: argparse.Namespace,
    report: EvaluationReport,
    qrels: dict[str, dict[str, int]],
    reranker: CrossEncoderCompressor,
) -> CalibrationReport:
    """Fit `--calibrate`'s calibration on the evaluation's scores, and save it."""
    from langchain_ce_rerank.evaluation import calibrate_scores

    with blame("--calibrate"):
        fitted = calibrate_scores(
            report.reranker_scores,
            qrels,
            engine=reranker.engine,
            method=args.calibration_method or "platt",
            holdout=0.5 if args.holdout is None else args.holdout,
            seed=args.seed or 0,
            unjudged=args.unjudged or "irrelevant",
            min_probability=(
                0.5 if args.min_probability is None else args.min_probability
            ),
            source=args.dataset or args.qrels,
        )
        fitted.save(args.calibrate)
    return fitted


def _cmd_eval(args: argparse.Namespace) -> int:
    requested = check_first_stages(args)  # before any file is read
    corpus_file, queries, qrels = _eval_data(args)
    _check_outputs(args)
    from tqdm import tqdm

    from langchain_ce_rerank.evaluation import evaluate, read_corpus, write_trec_run
    from langchain_ce_rerank.models import load_embeddings
    from langchain_ce_rerank.reranking_retriever import build_reranking_retriever
    from langchain_ce_rerank.store import new_index

    reranker = prepare_reranker(args)
    if args.instruction is not None:
        # Whether the model reads one shows once it loads: before the corpus.
        load_reranker(reranker)
    if corpus_file is None:
        store = load_index("--index", args)
    else:
        # Both models are found before the corpus is read, however large.
        embedding = args.embedding or DEFAULT_EMBEDDING_MODEL
        find_model("--embedding", embedding)
        with blame("--dataset"):
            corpus = read_corpus(corpus_file)
        with blame("--embedding"):
            embeddings = load_embeddings(embedding, device=args.device)
        store = new_index(embeddings)
        with tqdm(
            total=len(corpus),
            desc="Embedding corpus",
            unit="doc",
            file=sys.stderr,
            disable=None,  # no bar when stderr is not a terminal
        ) as bar:
            for start in range(0, len(corpus), 64):
                batch = corpus[start : start + 64]
                store.add_documents(batch)
                bar.update(len(batch))
    first_stage = store.as_retriever(k=args.k)
    stages = first_stages_for(first_stage, requested, args.index)
    load_reranker(reranker)  # with --ray too: a missing model fails here, early
    pipeline = build_reranking_retriever(first_stage=first_stage, reranker=reranker)
    try:
        scorer = ray_scorer(args)  # None without --ray
    except (ImportError, ConnectionError) as err:
        raise CliError(one_line(err)) from err
    bars = _StageBars(total=sum(qid in qrels for qid in queries))
    try:
        with reranking():
            report = evaluate(
                pipeline,
                queries,
                qrels,
                first_stages=stages,
                scorer=scorer,
                progress=bars,
            )
    finally:
        bars.close()
    fitted = (
        None if args.calibrate is None else _calibration(args, report, qrels, reranker)
    )
    if args.json:
        data = report.to_dict()
        if fitted is not None:
            data["calibration"] = {
                "file": args.calibrate,
                "first_stage": stages[0],
                **fitted.to_dict(),
            }
        text = json.dumps(data, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if args.json != "-":
        print_report(report)
        if fitted is not None:
            print_calibration(
                fitted,
                args.calibrate,
                stages[0] if len(stages) > 1 else None,
            )
    if args.save_run:
        folder = Path(args.save_run)
        folder.mkdir(parents=True, exist_ok=True)
        for config in report.configurations:
            slug = "_".join(
                "".join(c if c.isalnum() else " " for c in config.name).split()
            )
            write_trec_run(config.run, folder / f"{slug}.trec", tag=slug)
        print(f"TREC run files written to {folder}", file=sys.stderr)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `eval` command."""
    evaluate = commands.add_parser(
        "eval",
        help="measure dense, BM25 and hybrid retrieval, each alone and reranked",
        description=(
            "Report nDCG@10, MRR@10, Recall@k, Recall@top_n and the mean latency "
            "per query of each stage (first stage ms, rerank ms, total ms) for "
            "each first stage (dense, bm25, hybrid): alone ('hybrid'), with the "
            "cross-encoder ('hybrid + rerank'), and with the cross-encoder fused "
            "with it by RRF ('hybrid + rerank, RRF'). Each first stage's "
            "candidates are reranked separately, without the score cache, so "
            "rerank ms is the model's time for that first stage; reranking "
            "three first stages takes three times the model time of one, so "
            "pick fewer with --first-stage to spend less."
        ),
    )
    source = evaluate.add_argument_group(
        "data (a BEIR folder, or an index with queries and qrels)"
    )
    source.add_argument(
        "--dataset",
        metavar="DIR",
        help="BEIR layout: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv",
    )
    source.add_argument(
        "--split",
        default="test",
        help="qrels split of --dataset: qrels/SPLIT.tsv (default: %(default)s)",
    )
    source.add_argument(
        "--index", metavar="INDEX_DIR", help="an index from 'ce-rerank index'"
    )
    source.add_argument(
        "--queries", metavar="FILE", help="queries.jsonl for --index (_id, text)"
    )
    source.add_argument(
        "--qrels",
        metavar="FILE",
        help="qrels TSV for --index (query-id, corpus-id, score)",
    )
    evaluate.add_argument(
        "--first-stage",
        metavar="NAME",
        nargs="+",
        type=_first_stage_names,
        help=(
            "first stages to measure, each alone and reranked: dense, bm25, "
            "hybrid (space- or comma-separated, e.g. --first-stage hybrid or "
            "--first-stage dense,bm25). Each one adds its own reranking pass: "
            "all three take three times the reranker's time of one (default: "
            "dense bm25 hybrid, or dense alone for an index without a keyword "
            "index)"
        ),
    )
    evaluate.add_argument(
        "--embedding",
        metavar="MODEL_OR_PATH",
        help=(
            "bi-encoder (default: the one --index records, else "
            f"{DEFAULT_EMBEDDING_MODEL} for --dataset)"
        ),
    )
    evaluate.add_argument(
        "--json",
        metavar="FILE",
        help="also write the numbers as JSON to FILE ('-': JSON alone on stdout)",
    )
    evaluate.add_argument(
        "--save-run",
        metavar="DIR",
        help="write one TREC run file per configuration into DIR",
    )
    add_reranker_options(evaluate)
    add_calibrate_options(evaluate)
    add_ray_options(evaluate)
    evaluate.set_defaults(func=_cmd_eval)


def _fraction(value: str) -> float:
    """An argparse `type`: a number from 0 to 1."""
    number = float(value)
    if not 0.0 <= number <= 1.0:
        msg = f"must be from 0 to 1, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return number


def add_calibrate_options(parser: argparse.ArgumentParser) -> None:
    """Add `--calibrate FILE` and the options of the fit."""
    group = parser.add_argument_group(
        "relevance probability (fit a calibration of the reranker's scores)"
    )
    group.add_argument(
        "--calibrate",
        metavar="FILE",
        help=(
            "fit a mapping from the reranker's raw scores to the probability of "
            "relevance on the qrels, report how well it holds on held-out "
            "queries, and save it as JSON for 'ce-rerank query --calibration "
            "FILE'. It is fitted on the reranked candidates of one first stage: "
            "the first --first-stage given, else the first the index can run "
            "(dense, bm25, hybrid) (default: off)"
        ),
    )
    group.add_argument(
        "--calibration-method",
        choices=("platt", "isotonic"),
        help=(
            "platt: a logistic curve (two numbers, fine with few labels); "
            "isotonic: any monotone curve (needs more labels) (default: platt)"
        ),
    )
    group.add_argument(
        "--holdout",
        metavar="FRACTION",
        type=float,
        help=(
            "share of the queries held out to report on, the rest fitted on; 0 "
            "fits and reports on all of them (optimistic) (default: 0.5)"
        ),
    )
    group.add_argument(
        "--seed",
        metavar="N",
        type=int,
        help="seed of the fit/held-out split of the queries (default: 0)",
    )
    group.add_argument(
        "--min-probability",
        metavar="P",
        type=_fraction,
        help=("the probability the report's cuts are measured at (default: 0.5)"),
    )
    group.add_argument(
        "--unjudged",
        choices=("irrelevant", "skip"),
        help=(
            "a candidate the qrels do not judge counts as irrelevant (as in "
            "TREC and BEIR), or is left out of the fit (for qrels that judge "
            "irrelevant documents with grade 0) (default: irrelevant)"
        ),
    )
