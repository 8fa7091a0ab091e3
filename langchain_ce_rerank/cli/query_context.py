"""`ce-rerank query`'s context flags, and how its dropped candidates are named.

--group-by, --max-per-group, --max-context-tokens and --parents.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.cli._common import CliError, positive

if TYPE_CHECKING:
    from langchain_core.documents import Document

__all__ = ["SHOWN", "add_context_options", "context_settings", "drop_summary"]

_DROPPED = {
    "top_n": "past --top-n",
    "score_threshold": "under the score threshold",
    "group_full": "their --group-by group full",
    "context_budget": "over --max-context-tokens",
    "diversity": "set aside by --diversity",
    "min_probability": "under --min-probability",
}
"""How the summary line names each drop reason, in the command's own flags."""

SHOWN = (
    "relevance_probability",
    "fused_score",
    "relevance_passage",
    "context_tokens",
    "context_cut",
    "parent_chunks",
    "best_chunk_span",
)
"""Metadata a result row carries in --json when the reranker wrote it."""


def context_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The compressor settings of the context flags, checked before slow work."""
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


def drop_summary(dropped: Sequence[Document]) -> str:
    """The dropped candidates counted by reason, e.g. `3 past --top-n`."""
    counts: dict[str, int] = {}
    for doc in dropped:
        reason = str(doc.metadata["drop_reason"])
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(
        f"{count} {_DROPPED.get(reason, reason)}" for reason, count in counts.items()
    )


def add_context_options(query: argparse.ArgumentParser) -> None:
    """--group-by, --max-per-group, --max-context-tokens and --parents."""
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
