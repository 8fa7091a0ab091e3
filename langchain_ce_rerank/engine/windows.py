"""Splitting a long text into overlapping token windows, as character spans.

A cross-encoder reads at most `max_length` tokens per (query, document) pair
and silently drops the rest. To score a long document fairly, it is cut into
overlapping windows that each fit beside the query; the caller scores every
window and keeps the best. Spans are character offsets into the original text,
so the best window can be shown to the user.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeAlias

from langchain_ce_rerank.engine.protocols import CrossEncoderLike

Span: TypeAlias = tuple[int, int]
TokenSpans: TypeAlias = Callable[[str], list[Span]]

_WORD = re.compile(r"\S+")


def word_spans(text: str) -> list[Span]:
    """Whitespace-separated words as tokens (for models without a tokenizer)."""
    return [match.span() for match in _WORD.finditer(text)]


def tokenizer_spans(tokenizer: Any) -> TokenSpans:
    """Token character spans from a Hugging Face tokenizer (no special tokens)."""

    def spans(text: str) -> list[Span]:
        # verbose=False: transformers would otherwise warn that a long text
        # "will result in indexing errors"; it never reaches the model whole,
        # only in windows that fit.
        encoded = tokenizer(
            text,
            add_special_tokens=False,
            return_offsets_mapping=True,
            verbose=False,
        )
        return [(int(a), int(b)) for a, b in encoded["offset_mapping"] if b > a]

    return spans


def windows(text: str, spans: list[Span], size: int, overlap: int) -> list[Span]:
    """Character spans of windows of `size` tokens, overlapping by `overlap`.

    A text that fits in one window yields one span covering all of it.

    Raises:
        ValueError: `size` < 1 or `overlap` not in [0, size).
    """
    if size < 1:
        msg = f"a passage window must hold at least 1 token, got {size}"
        raise ValueError(msg)
    if not 0 <= overlap < size:
        msg = f"passage_overlap must be in [0, {size}), got {overlap}"
        raise ValueError(msg)
    if len(spans) <= size:
        return [(0, len(text))]
    result: list[Span] = []
    step = size - overlap
    start = 0
    while True:
        end = min(start + size, len(spans))
        result.append((spans[start][0], spans[end - 1][1]))
        if end == len(spans):
            return result
        start += step


def model_spans(model: object) -> TokenSpans:
    """The model's tokens as character spans; words for a model without one."""
    tokenizer = getattr(model, "tokenizer", None)
    if isinstance(model, CrossEncoderLike) and tokenizer is not None:
        return tokenizer_spans(tokenizer)
    return word_spans


def passage_windows(
    model: object,
    query: str,
    text: str,
    *,
    passage_tokens: int | None,
    passage_overlap: int,
) -> list[Span]:
    """`text`'s windows for `model`, each fitting in one pair beside `query`.

    Args:
        model: The loaded model; one without a tokenizer counts words.
        query: The query each window is paired with.
        text: The candidate text.
        passage_tokens: Tokens per (query, window) pair; None uses the
            model's `max_seq_length` (required for a model without a tokenizer).
        passage_overlap: Tokens each window shares with the previous one.

    Raises:
        ValueError: The query leaves no more than `passage_overlap` tokens.
    """
    tokenizer = getattr(model, "tokenizer", None)
    spans: TokenSpans
    if not isinstance(model, CrossEncoderLike) or tokenizer is None:
        spans = word_spans
        budget = passage_tokens or 0
        reserved = len(word_spans(query))
    else:
        spans = tokenizer_spans(tokenizer)
        budget = passage_tokens or int(getattr(model, "max_seq_length", 512))
        reserved = len(spans(query)) + tokenizer.num_special_tokens_to_add(pair=True)
    size = budget - reserved
    if size <= passage_overlap:
        msg = (
            f"the query takes {reserved} of the {budget} tokens per pair, "
            f"leaving {size} for each passage window (passage_overlap is "
            f"{passage_overlap}); shorten the query or raise passage_tokens"
        )
        raise ValueError(msg)
    return windows(text, spans(text), size, passage_overlap)
