"""The `ce-rerank` command: index a folder, query it, evaluate reranking.

The CLI owns the terminal: tables come from rich, progress bars from tqdm, and
every error is one line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.ingest import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER, DEFAULT_EMBEDDING_MODEL

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from rich.console import Console

    from langchain_ce_rerank.compressor import CrossEncoderCompressor
    from langchain_ce_rerank.evaluation import EvaluationReport
    from langchain_ce_rerank.vectorstore import FaissVectorStore

__all__ = ["main"]

logger = logging.getLogger("langchain_ce_rerank.cli")

_SNIPPET = 60


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


def _reranker(args: argparse.Namespace) -> CrossEncoderCompressor:
    from langchain_ce_rerank.compressor import CrossEncoderCompressor

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
    compressor.load_model()
    return compressor


def _load_index(folder: str) -> FaissVectorStore:
    from langchain_ce_rerank.vectorstore import FaissVectorStore

    return FaissVectorStore.load_local(folder)


# -- index ----------------------------------------------------------------------


def _cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from langchain_ce_rerank.ingest import load_corpus, sync_store
    from langchain_ce_rerank.models import load_embeddings
    from langchain_ce_rerank.vectorstore import FaissVectorStore

    corpus = load_corpus(
        args.paths, chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap
    )
    if not corpus.documents:
        skipped = f" ({len(corpus.skipped)} skipped)" if corpus.skipped else ""
        msg = (
            f"empty corpus: no text in .txt, .md or .jsonl files under "
            f"{' '.join(args.paths)}{skipped}; nothing was written"
        )
        raise CliError(msg)
    out = Path(args.out)
    if (out / "manifest.json").is_file():
        recorded = FaissVectorStore.read_manifest(out).get("embedding_model")
        model = args.embedding or recorded or DEFAULT_EMBEDDING_MODEL
        if recorded and model != recorded:
            msg = (
                f"{out} was built with {recorded!r}, not {model!r}; pass "
                f"--embedding {recorded} or write to a new --out folder"
            )
            raise CliError(msg)
        store = FaissVectorStore.load_local(
            out, load_embeddings(model, device=args.device)
        )
    else:
        model = args.embedding or DEFAULT_EMBEDDING_MODEL
        store = FaissVectorStore(load_embeddings(model, device=args.device))
    with tqdm(
        total=len(corpus.documents), desc="Embedding", unit="chunk", file=sys.stderr
    ) as bar:
        report = sync_store(
            store, corpus, args.paths, batch_size=args.batch_size, progress=bar.update
        )
        bar.update(len(corpus.documents) - bar.n)  # unchanged chunks count as done
    store.save_local(out)
    print(
        f"Indexed {len(corpus.files)} files into {out}: {report.added} chunks added, "
        f"{report.unchanged} unchanged, {report.removed} removed "
        f"({len(store.ids)} in the index)."
    )
    if corpus.skipped:
        print(f"Skipped {len(corpus.skipped)}:", file=sys.stderr)
        for where, reason in corpus.skipped:
            print(f"  {where}: {reason}", file=sys.stderr)
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

    store = _load_index(args.index)
    compressor = _reranker(args)
    candidates = store.as_retriever(k=args.k).invoke(args.question)
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


def _cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from langchain_ce_rerank.evaluation import (
        evaluate,
        load_beir,
        read_qrels,
        read_queries,
        write_trec_run,
    )
    from langchain_ce_rerank.models import load_embeddings
    from langchain_ce_rerank.pipeline import build_reranking_retriever
    from langchain_ce_rerank.vectorstore import FaissVectorStore

    if args.dataset:
        if args.index or args.queries or args.qrels:
            msg = (
                "--dataset already holds queries and qrels; "
                "do not add --index/--queries/--qrels"
            )
            raise CliError(msg)
        data = load_beir(args.dataset, split=args.split)
        queries, qrels = data.queries, data.qrels
        store = FaissVectorStore(
            load_embeddings(
                args.embedding or DEFAULT_EMBEDDING_MODEL, device=args.device
            )
        )
        for start in tqdm(
            range(0, len(data.corpus), 64), desc="Embedding corpus", file=sys.stderr
        ):
            store.add_documents(data.corpus[start : start + 64])
    elif args.index and args.queries and args.qrels:
        store = _load_index(args.index)
        queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    else:
        msg = "give --dataset DIR, or --index DIR with --queries FILE and --qrels FILE"
        raise CliError(msg)
    pipeline = build_reranking_retriever(
        vectorstore=store, reranker=_reranker(args), k=args.k
    )
    report = evaluate(pipeline, queries, qrels)
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


def _add_reranker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reranking")
    group.add_argument(
        "-k",
        type=_positive,
        default=20,
        help="first-stage candidates (default: %(default)s)",
    )
    group.add_argument(
        "--top-n",
        type=_positive,
        default=5,
        help="results kept after reranking (default: %(default)s)",
    )
    group.add_argument(
        "--reranker",
        default=DEFAULT_CROSS_ENCODER,
        metavar="MODEL_OR_PATH",
        help="cross-encoder id or local folder (default: %(default)s)",
    )
    group.add_argument(
        "--long-documents",
        choices=("truncate", "max_passage"),
        default="truncate",
        help=(
            "score only the first 512 tokens, or every window and keep the best "
            "(default: %(default)s)"
        ),
    )
    group.add_argument(
        "--fusion",
        choices=("none", "rrf"),
        default="none",
        help=(
            "fuse the cross-encoder order with the first stage by RRF "
            "(default: %(default)s)"
        ),
    )
    group.add_argument(
        "--content-template",
        metavar="TEMPLATE",
        help='text the reranker reads, e.g. "{title}\\n{page_content}"',
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
            "int8 cross-encoder (with --backend openvino or onnx; fastest on "
            "CPU: --backend openvino --int8)"
        ),
    )
    group.add_argument("--device", help="torch device (default: cuda, mps, then cpu)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ce-rerank",
        description=(
            "Index documents with FAISS, rerank with a cross-encoder, measure the gain."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser(
        "index",
        help="index .txt, .md and .jsonl files into a folder",
        description=(
            "Read .txt, .md and .jsonl files (JSONL rows: id, text, optional "
            "metadata), split them into chunks, embed them and save a "
            "FaissVectorStore. Re-running on the same paths updates changed files "
            "and removes deleted ones."
        ),
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    index.add_argument(
        "--out",
        required=True,
        metavar="INDEX_DIR",
        help="index folder (created or updated)",
    )
    index.add_argument(
        "--chunk-size",
        type=_positive,
        default=DEFAULT_CHUNK_SIZE,
        help="characters per chunk (default: %(default)s)",
    )
    index.add_argument(
        "--chunk-overlap",
        type=int,
        default=DEFAULT_CHUNK_OVERLAP,
        help="characters shared by neighbouring chunks (default: %(default)s)",
    )
    index.add_argument(
        "--embedding",
        metavar="MODEL_OR_PATH",
        help=f"bi-encoder (default: the index's own, else {DEFAULT_EMBEDDING_MODEL})",
    )
    index.add_argument(
        "--batch-size",
        type=_positive,
        default=64,
        help="chunks embedded per batch (default: %(default)s)",
    )
    index.add_argument("--device", help="torch device (default: cuda, mps, then cpu)")
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
    query.add_argument("question", help="the query text")
    query.add_argument(
        "--json",
        action="store_true",
        help="print machine-readable JSON instead of a table",
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
        "--split", default="test", help="qrels split (default: %(default)s)"
    )
    source.add_argument(
        "--index", metavar="INDEX_DIR", help="an index from 'ce-rerank index'"
    )
    source.add_argument("--queries", metavar="FILE", help="queries.jsonl (_id, text)")
    source.add_argument(
        "--qrels", metavar="FILE", help="qrels TSV (query-id, corpus-id, score)"
    )
    evaluate.add_argument(
        "--embedding",
        metavar="MODEL_OR_PATH",
        help=f"bi-encoder for --dataset (default: {DEFAULT_EMBEDDING_MODEL})",
    )
    evaluate.add_argument(
        "--json", metavar="FILE", help="write the numbers as JSON ('-' for stdout)"
    )
    evaluate.add_argument(
        "--save-run", metavar="DIR", help="write one TREC run file per configuration"
    )
    _add_reranker_options(evaluate)
    evaluate.set_defaults(func=_cmd_eval)
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
        message = " ".join(str(err).split())
        print(f"ce-rerank: error: {message}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
