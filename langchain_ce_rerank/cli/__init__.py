"""The `ce-rerank` command: index a folder, query it, evaluate reranking.

The CLI owns the terminal: tables come from rich, progress bars from tqdm, and
every error is one line on stderr, exit status 1, naming the argument to
change (`ExitStatus` lists each status). Cheap checks (blank queries, missing
folders, option combinations) run before anything slow (loading a model, an
index or a corpus), and before any heavy import: building the parser,
`--help`, argument errors and missing files import no torch, transformers,
FAISS, numpy or LangChain; each command imports them once its cheap checks
have passed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from langchain_ce_rerank.cli import eval as eval_command
from langchain_ce_rerank.cli import index, query
from langchain_ce_rerank.cli._common import (
    CliError,
    ExitStatus,
    one_line,
    quiet_model_loading,
)

# The renderer of `ce-rerank eval`'s table, used by EvaluationReport's tests.
from langchain_ce_rerank.cli.eval import print_report
from langchain_ce_rerank.cli.serve import add_serve_parser

__all__ = ["ExitStatus", "main", "print_report"]


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
            "one line on stderr with exit status 1; a malformed command line "
            "exits 2, after the usage."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    index.add_parser(commands)
    query.add_parser(commands)
    eval_command.add_parser(commands)
    add_serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ce-rerank` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr
    )
    try:
        quiet_model_loading()
        status: int = args.func(args)
    except (CliError, ImportError, OSError, ValueError) as err:
        print(f"ce-rerank: error: {one_line(err)}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        print("ce-rerank: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    return status
