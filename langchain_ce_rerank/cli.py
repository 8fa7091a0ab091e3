"""The `ce-rerank` command: index a folder, query it, evaluate reranking.

The CLI owns the terminal: tables come from rich, progress bars from tqdm, and
every error is one line on stderr, exit status 1, naming the argument to
change. Cheap checks (blank queries, missing folders, option combinations)
run before anything slow (loading a model, an index or a corpus).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank._ray_options import add_ray_options, ray_scorer
from langchain_ce_rerank.errors import ModelNotFoundError
from langchain_ce_rerank.ingest import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    SUPPORTED_SUFFIXES,
)
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER, DEFAULT_EMBEDDING_MODEL

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from rich.console import Console

    from langchain_ce_rerank.compressor import CrossEncoderCompressor
    from langchain_ce_rerank.evaluation import EvaluationReport
    from langchain_ce_rerank.ingest import Corpus
    from langchain_ce_rerank.vectorstore import FaissVectorStore

__all__ = ["main"]

logger = logging.getLogger("langchain_ce_rerank.cli")

_SNIPPET = 60
_CREATE_INDEX = "ce-rerank index PATHS... --out"
_MANIFEST = "manifest.json"
_LISTED = 20
"""Skipped files listed one per line; the rest are counted."""


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _console() -> Console:
    from rich.console import Console

    # Wide enough for the tables when stdout is a pipe (rich assumes 80).
    return Console(width=None if sys.stdout.isatty() else 140, highlight=False)


def _quiet_model_loading() -> None:
    """Keep Hugging Face's own progress bars out of the CLI's output."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        msg = f"must be at least 1, got {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _template(value: str) -> str:
    """Read a backslash-n or backslash-t typed in a shell as a newline or a tab."""
    return value.replace("\\n", "\n").replace("\\t", "\t")


# -- errors: one line, naming the argument to change -----------------------------


def _one_line(err: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        text = "; ".join(
            str(e["msg"]).removeprefix("Value error, ") for e in err.errors()
        )
    elif isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.filename}: {err.strerror.lower()}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def _model_error(err: ModelNotFoundError, flag: str) -> CliError:
    """The library's not-found message, with the CLI's remedy in it."""
    return CliError(_one_line(err.with_remedy(f"{flag} PATH")))


@contextmanager
def _blame(flag: str, remedy: str = "") -> Iterator[None]:
    """Report a library error raised in this block as a fault of `flag`."""
    try:
        yield
    except CliError:
        raise
    except ModelNotFoundError as err:
        raise _model_error(err, flag) from err
    except (ImportError, OSError, ValueError) as err:
        tail = f"; {remedy}" if remedy else ""
        raise CliError(f"{flag}: {_one_line(err)}{tail}") from err


@contextmanager
def _reranking() -> Iterator[None]:
    """A missing metadata field surfaces only when documents are scored."""
    try:
        yield
    except ValueError as err:
        if "content_template" not in str(err):
            raise
        raise CliError(f"--content-template: {_one_line(err)}") from err


# -- cheap checks, run before anything slow --------------------------------------


def _check_index_folder(flag: str, folder: str) -> None:
    path = Path(folder)
    if path.is_file():
        msg = (
            f"{flag} {folder!r} is a file, not an index folder; pass the folder "
            f"written by: {_CREATE_INDEX} DIR"
        )
        raise CliError(msg)
    if not path.is_dir():
        msg = (
            f"{flag} {folder!r} does not exist; "
            f"create one with: {_CREATE_INDEX} {folder}"
        )
        raise CliError(msg)
    if not (path / _MANIFEST).is_file():
        msg = (
            f"{flag} {folder!r} is not an index folder (it has no {_MANIFEST}); "
            f"create one with: {_CREATE_INDEX} {folder}"
        )
        raise CliError(msg)


def _check_input_file(flag: str, path: str) -> None:
    if Path(path).is_dir():
        msg = f"{flag} {path!r} is a folder; pass the file itself"
        raise CliError(msg)
    if not Path(path).is_file():
        msg = f"{flag} {path!r} does not exist"
        raise CliError(msg)


def _check_device(device: str | None) -> None:
    if device is None:
        return
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError as err:
        msg = f"--device {device!r} is not a torch device; use cpu, cuda, cuda:1 or mps"
        raise CliError(msg) from err
    if kind == "cuda" and not torch.cuda.is_available():
        msg = (
            f"--device {device!r}: no CUDA GPU is available here; "
            "use --device cpu or leave it out"
        )
        raise CliError(msg)
    if kind == "mps" and not torch.backends.mps.is_available():
        msg = (
            f"--device {device!r}: MPS is not available here; "
            "use --device cpu or leave it out"
        )
        raise CliError(msg)


def _reranker(args: argparse.Namespace) -> CrossEncoderCompressor:
    """Check the reranking options and find the model; loading comes later."""
    from langchain_ce_rerank.compressor import CrossEncoderCompressor
    from langchain_ce_rerank.models import resolve_model

    if args.int8 and args.backend == "torch":
        msg = (
            "--int8 needs --backend openvino (static int8, fastest on CPU) or "
            "--backend onnx (dynamic int8)"
        )
        raise CliError(msg)
    _check_device(args.device)
    with _blame(f"--backend {args.backend}"):
        try:
            compressor = CrossEncoderCompressor(
                model=args.reranker,
                top_n=args.top_n,
                device=args.device,
                long_documents=args.long_documents,
                fusion=args.fusion,
                content_template=args.content_template,
                backend=args.backend,
                quantization="int8" if args.int8 else None,
            )
        except ValueError as err:
            if "content_template" in str(err):
                raise CliError(f"--content-template: {_one_line(err)}") from err
            raise
    try:
        resolve_model(args.reranker)  # cheap: no weights are read
    except ModelNotFoundError:
        _load_reranker(compressor)  # fails as fast, with the loader's own advice
    except ValueError as err:
        raise CliError(f"--reranker: {_one_line(err)}") from err
    return compressor


def _load_reranker(compressor: CrossEncoderCompressor) -> None:
    with _blame("--reranker"):
        compressor.load_model()


def _load_index(flag: str, args: argparse.Namespace) -> FaissVectorStore:
    """Load the index named by `flag`, with the bi-encoder it was built with."""
    from langchain_ce_rerank.models import load_embeddings
    from langchain_ce_rerank.vectorstore import FaissVectorStore

    folder = args.index
    rebuild = f"rebuild it with: {_CREATE_INDEX} {folder}"
    _check_index_folder(flag, folder)
    with _blame(flag, rebuild):
        recorded = FaissVectorStore.read_manifest(folder).get("embedding_model")
    model = args.embedding or recorded
    if not model:
        msg = (
            f"{flag} {folder!r} does not record its embedding model; pass the one "
            "it was built with: --embedding MODEL_OR_PATH"
        )
        raise CliError(msg)
    with _blame("--embedding"):
        embeddings = load_embeddings(model, device=args.device)
    with _blame(flag, rebuild):
        return FaissVectorStore.load_local(folder, embeddings)


# -- index ----------------------------------------------------------------------


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
    for where, reason in skipped[:_LISTED]:
        print(f"  {_shown(where)}: {reason}", file=sys.stderr)
    if len(skipped) > _LISTED:
        print(f"  ... and {len(skipped) - _LISTED} more", file=sys.stderr)


def _cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from langchain_ce_rerank.ingest import load_corpus, sync_store
    from langchain_ce_rerank.models import load_embeddings
    from langchain_ce_rerank.vectorstore import FaissVectorStore

    if not 0 <= args.chunk_overlap < args.chunk_size:
        msg = (
            f"--chunk-overlap {args.chunk_overlap} must be at least 0 and smaller "
            f"than --chunk-size ({args.chunk_size})"
        )
        raise CliError(msg)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        msg = (
            f"--out {args.out!r} is a file; "
            "pass a folder for the index (created if missing)"
        )
        raise CliError(msg)
    existing = (out / _MANIFEST).is_file()
    if out.is_dir() and not existing and any(out.iterdir()):
        msg = (
            f"--out {args.out!r} holds other files but no index ({_MANIFEST}); "
            "pass a new or empty folder"
        )
        raise CliError(msg)
    _check_device(args.device)
    start_over = f"write to a new --out folder, or delete {args.out} to rebuild it"
    recorded = None
    if existing:
        with _blame("--out", start_over):
            recorded = FaissVectorStore.read_manifest(out).get("embedding_model")
    model = args.embedding or recorded or DEFAULT_EMBEDDING_MODEL
    if recorded and model != recorded:
        msg = (
            f"--out {args.out} was built with {recorded!r}, not {model!r}; pass "
            f"--embedding {recorded} or write to a new --out folder"
        )
        raise CliError(msg)
    # The skipped files are listed once at the end, not also warned about.
    logging.getLogger("langchain_ce_rerank.ingest").setLevel(logging.ERROR)
    with _blame("PATH"):
        corpus = load_corpus(
            args.paths,
            chunk_size=args.chunk_size,
            chunk_overlap=args.chunk_overlap,
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
    with _blame("--embedding"):
        embeddings = load_embeddings(model, device=args.device)
    with _blame("--out", start_over):
        store = (
            FaissVectorStore.load_local(out, embeddings)
            if existing
            else FaissVectorStore(embeddings)
        )
    with tqdm(
        total=len(corpus.documents), desc="Embedding", unit="chunk", file=sys.stderr
    ) as bar:
        report = sync_store(
            store, corpus, args.paths, batch_size=args.batch_size, progress=bar.update
        )
        bar.update(len(corpus.documents) - bar.n)  # unchanged chunks count as done
    with _blame("--out"):
        store.save_local(out)
    updated = f"{report.updated} updated, " if report.updated else ""
    print(
        f"Indexed {len(corpus.files)} files into {out}: {report.added} chunks added, "
        f"{updated}{report.unchanged} unchanged, {report.removed} removed "
        f"({len(store.ids)} in the index)."
    )
    if corpus.duplicates:
        print(_duplicates_line(corpus))
    if corpus.skipped:
        _print_skipped(corpus.skipped)
    return 0


# -- query ----------------------------------------------------------------------


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


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET else flat[: _SNIPPET - 1] + "…"


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
    from rich.table import Table

    if not args.question.strip():
        msg = (
            f"QUESTION is blank ({args.question!r}); pass the text to search for: "
            'ce-rerank query INDEX_DIR "how do I ...?"'
        )
        raise CliError(msg)
    _check_index_folder("INDEX_DIR", args.index)
    compressor = _reranker(args)
    store = _load_index("INDEX_DIR", args)
    _load_reranker(compressor)
    candidates = store.as_retriever(k=args.k).invoke(args.question)
    with _reranking():
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
    table = Table(title=f"{args.question}", title_justify="left")
    for name, justify in (
        ("move", "right"),
        ("rerank score", "right"),
        ("cosine", "right"),
        ("source", "left"),
        ("snippet", "left"),
    ):
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=True,
            min_width=len(name),
            overflow="ellipsis",
        )
    for doc, row in zip(reranked, rows, strict=True):
        table.add_row(
            f"{row['retrieval_rank']} -> {row['rank']}",
            f"{row['relevance_score']:.3f}",
            f"{row['retrieval_score']:.3f}",
            _display_source(doc),
            _snippet(doc.page_content),
        )
    console = _console()
    console.print(table)
    console.print(
        f"{len(candidates)} first-stage candidates reranked by {args.reranker}; "
        f"top {len(reranked)} shown (move = first-stage rank -> final rank)."
    )
    return 0


# -- eval -----------------------------------------------------------------------


def _print_report(report: EvaluationReport) -> None:
    from langchain_ce_rerank.display import report_table

    _console().print(report_table(report))


def _eval_data(
    args: argparse.Namespace,
) -> tuple[list[Document] | None, dict[str, str], dict[str, dict[str, int]]]:
    """Read and check the queries and qrels (and a BEIR corpus): no model yet."""
    from langchain_ce_rerank.evaluation import load_beir, read_qrels, read_queries

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
        with _blame("--dataset"):
            data = load_beir(args.dataset, split=args.split)
        corpus, queries, qrels = data.corpus, data.queries, data.qrels
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
        _check_index_folder("--index", args.index)
        _check_input_file("--queries", args.queries)
        _check_input_file("--qrels", args.qrels)
        with _blame("--queries"):
            queries = read_queries(args.queries)
        with _blame("--qrels"):
            qrels = read_qrels(args.qrels)
        corpus, queries_flag, qrels_flag = None, "--queries", "--qrels"
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
    return corpus, queries, qrels


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
    if args.save_run and Path(args.save_run).is_file():
        msg = (
            f"--save-run {args.save_run!r} is a file; "
            "pass a folder (created if missing)"
        )
        raise CliError(msg)


def _cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from langchain_ce_rerank.evaluation import evaluate, write_trec_run
    from langchain_ce_rerank.models import load_embeddings
    from langchain_ce_rerank.pipeline import build_reranking_retriever
    from langchain_ce_rerank.vectorstore import FaissVectorStore

    corpus, queries, qrels = _eval_data(args)
    _check_outputs(args)
    reranker = _reranker(args)
    if corpus is None:
        store = _load_index("--index", args)
    else:
        with _blame("--embedding"):
            embeddings = load_embeddings(
                args.embedding or DEFAULT_EMBEDDING_MODEL, device=args.device
            )
        store = FaissVectorStore(embeddings)
        for start in tqdm(
            range(0, len(corpus), 64), desc="Embedding corpus", file=sys.stderr
        ):
            store.add_documents(corpus[start : start + 64])
    _load_reranker(reranker)  # with --ray too: a missing model fails here, early
    pipeline = build_reranking_retriever(vectorstore=store, reranker=reranker, k=args.k)
    try:
        scorer = ray_scorer(args)  # None without --ray
    except (ImportError, ConnectionError) as err:
        raise CliError(_one_line(err)) from err
    with _reranking():
        report = evaluate(pipeline, queries, qrels, scorer=scorer)
    if args.json:
        text = json.dumps(report.to_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if args.json != "-":
        _print_report(report)
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


# -- parser ---------------------------------------------------------------------

_DEVICE_HELP = (
    "torch device: cpu, cuda, cuda:1, mps (default: cuda, then mps, then cpu)"
)


def _add_reranker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reranking")
    group.add_argument(
        "-k",
        metavar="N",
        type=_positive,
        default=20,
        help="first-stage candidates passed to the reranker (default: %(default)s)",
    )
    group.add_argument(
        "--top-n",
        metavar="N",
        type=_positive,
        default=5,
        help="results kept after reranking (default: %(default)s)",
    )
    group.add_argument(
        "--reranker",
        default=DEFAULT_CROSS_ENCODER,
        metavar="MODEL_OR_PATH",
        help=(
            "cross-encoder: a Hugging Face id (from the local cache when "
            "HF_HUB_OFFLINE=1) or a local folder (default: %(default)s)"
        ),
    )
    group.add_argument(
        "--long-documents",
        choices=("truncate", "max_passage"),
        default="truncate",
        help=(
            "truncate: score the start of each document that fits the model's "
            "window; max_passage: score every window and keep the best "
            "(default: %(default)s)"
        ),
    )
    group.add_argument(
        "--fusion",
        choices=("none", "rrf"),
        default="none",
        help=(
            "rrf: order by Reciprocal Rank Fusion of the cross-encoder and "
            "first-stage ranks (default: %(default)s)"
        ),
    )
    group.add_argument(
        "--content-template",
        metavar="TEMPLATE",
        type=_template,
        help=(
            "what the reranker reads: {page_content} and metadata fields, e.g. "
            '"{title}\\n{page_content}" (\\n and \\t are read as newline and '
            "tab; default: the text alone)"
        ),
    )
    group.add_argument(
        "--backend",
        choices=("torch", "openvino", "onnx"),
        default="torch",
        help=(
            "cross-encoder inference backend; openvino and onnx need the "
            "[openvino] / [onnx] extra (default: %(default)s)"
        ),
    )
    group.add_argument(
        "--int8",
        action="store_true",
        help=(
            "int8 cross-encoder, with --backend openvino or onnx; fastest on "
            "CPU: --backend openvino --int8 (default: off)"
        ),
    )
    group.add_argument("--device", help=_DEVICE_HELP)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ce-rerank",
        description=(
            "Index documents with FAISS, rerank with a cross-encoder, measure the gain."
        ),
        epilog=(
            "examples:\n"
            "  ce-rerank index docs/ --out ix\n"
            '  ce-rerank query ix "How do I restore a volume backup?" -k 20 --top-n 5\n'
            "  ce-rerank eval --dataset my-beir-folder\n"
            "Run 'ce-rerank COMMAND --help' for a command's options. Every error is "
            "one line on stderr with exit status 1."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    suffixes = ", ".join(SUPPORTED_SUFFIXES)
    index = commands.add_parser(
        "index",
        help=f"index {suffixes} files into a folder",
        description=(
            f"Read {suffixes} files (JSONL rows: id, text, optional metadata; a "
            "BEIR corpus.jsonl works as it is), split them into chunks, embed "
            "them and save a FaissVectorStore. Files of other types are listed as "
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
        type=_positive,
        default=DEFAULT_CHUNK_SIZE,
        help="characters per chunk (default: %(default)s)",
    )
    index.add_argument(
        "--chunk-overlap",
        metavar="N",
        type=int,
        default=DEFAULT_CHUNK_OVERLAP,
        help="characters shared by neighbouring chunks (default: %(default)s)",
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
        type=_positive,
        default=64,
        help="chunks embedded per batch (default: %(default)s)",
    )
    index.add_argument("--device", help=_DEVICE_HELP)
    index.set_defaults(func=_cmd_index)

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
    _add_reranker_options(query)
    query.set_defaults(func=_cmd_query)

    evaluate = commands.add_parser(
        "eval",
        help="measure first stage vs. reranked vs. fused retrieval",
        description=(
            "Report nDCG@10, MRR@10, Recall@k, Recall@top_n and mean latency per "
            "query for the first stage alone, with the cross-encoder, and with RRF "
            "fusion."
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
    _add_reranker_options(evaluate)
    add_ray_options(evaluate)
    evaluate.set_defaults(func=_cmd_eval)

    from langchain_ce_rerank.serving.cli import add_serve_parser

    add_serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ce-rerank` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr
    )
    try:
        _quiet_model_loading()
        status: int = args.func(args)
    except (CliError, ImportError, OSError, ValueError) as err:
        print(f"ce-rerank: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ce-rerank: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
