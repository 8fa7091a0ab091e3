"""Cutting a long document to what the model reads: windows and truncation.

A cross-encoder reads at most `max_length` tokens per (query, document) pair
and silently drops the rest. Only the document is ever cut here, never the
query, a prompt or a template's fixed tokens: the document's budget is the
pair's length minus what the scorer's pair format spends beside it
(`engine.tokens.PairFormat`, measured with the model's own tokenizer).

- `long_documents="max_passage"`: the document is cut into overlapping
  windows that each fit beside the query; the caller scores every window and
  aggregates them (`engine.aggregation`). Spans are character offsets into
  the original text, so the best window can be shown to the user.
- `long_documents="truncate"`: the document is cut to its budget before the
  model sees it, so the model's own truncation never reaches the query or a
  template's closing tokens (which a causal-LM reranker reads its score at).
- `max_tokens_per_doc` (`truncate_texts`): each document to its first N
  tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from langchain_ce_rerank.engine.rendering import content_parts
from langchain_ce_rerank.engine.tokens import (
    PairFormat,
    Span,
    TokenSpans,
    pair_format,
    tokenizer_spans,
    word_spans,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Span",
    "TokenSpans",
    "document_budget",
    "fit_to_model",
    "model_spans",
    "passage_windows",
    "scoring_units",
    "tokenizer_spans",
    "truncate_texts",
    "windows",
    "word_spans",
]


def windows(text: str, spans: list[Span], size: int, overlap: int) -> list[Span]:
    """Character spans of windows of `size` tokens, overlapping by `overlap`.

    A text that fits in one window yields one span covering all of it.
    Windows start and end between whitespace-separated words where they can
    (a word longer than a window is cut inside): a word cut in two is split
    into more tokens alone than it had in the text, and would overflow.

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
    count = len(spans)
    word_start = [i == 0 or spans[i][0] > spans[i - 1][1] for i in range(count)]
    word_start.append(True)  # the end of the text
    result: list[Span] = []
    start = 0
    while True:
        end = min(start + size, count)
        cut = end
        while cut > start + 1 and not word_start[cut]:
            cut -= 1
        end = cut if word_start[cut] else end
        result.append((spans[start][0], spans[end - 1][1]))
        if end == count:
            return result
        following = max(end - overlap, start + 1)
        back = following
        while back > start + 1 and not word_start[back]:
            back -= 1
        start = back if word_start[back] else following


def model_spans(model: object) -> TokenSpans:
    """The model's tokens as character spans; words for a model without one."""
    return pair_format(model).spans


def document_budget(
    fmt: PairFormat, query: str, pair_tokens: int | None, *, setting: str
) -> tuple[int, int, int]:
    """Tokens left for the document in one pair: (budget, pair size, reserved).

    Args:
        fmt: The scorer's pair format.
        query: The query the document is paired with.
        pair_tokens: Tokens per pair; None uses the model's `max_length`.
        setting: The setting to name when there is no pair size.

    Raises:
        ValueError: No pair size is known (the scorer has no `max_length`).
    """
    size = pair_tokens or fmt.max_length
    if size is None:
        msg = (
            f"{setting} is needed: the model exposes no max_length to size "
            "its windows by"
        )
        raise ValueError(msg)
    reserved = fmt.reserved(query)
    return size - reserved, size, reserved


def _shrink_to_fit(
    fmt: PairFormat,
    query: str,
    text: str,
    spans: list[Span],
    size: int,
    limit: int,
    fixed: tuple[str, str] = ("", ""),
) -> int:
    """`size`, less whatever the pair format adds when the document is in it.

    A tokenizer may split a document's edges differently inside a pair than
    alone (byte-level BPE merges across a template's space); the first window,
    the largest, is measured as the model builds it and the size corrected.
    """
    if fmt.pair_length is None or len(spans) <= size:
        return size
    first = fixed[0] + text[: spans[size - 1][1]] + fixed[1]
    excess = fmt.pair_length(query, first) - limit
    return size - max(excess, 0)


def _fixed_tokens(fmt: PairFormat, fixed: tuple[str, str]) -> int:
    return sum(len(fmt.spans(part)) for part in fixed if part)


def _what_to_shorten(prompt: str | None) -> tuple[str, str]:
    """What fills a pair beside the document, and what the user can shorten."""
    if prompt:
        return "the query, the instruction", "the query or the instruction"
    return "the query", "the query"


def passage_windows(
    model: object,
    query: str,
    text: str,
    *,
    passage_tokens: int | None,
    passage_overlap: int,
    prompt: str | None = None,
    fmt: PairFormat | None = None,
    fixed: tuple[str, str] = ("", ""),
) -> list[Span]:
    """`text`'s windows for `model`, each fitting in one pair beside `query`.

    Args:
        model: The loaded model; one without a tokenizer counts words.
        query: The query each window is paired with.
        text: The candidate text.
        passage_tokens: Tokens per (query, window) pair; None uses the
            model's `max_seq_length` (required for a model without one).
        passage_overlap: Tokens each window shares with the previous one.
        prompt: The prompt (instruction) sent with every pair, if any;
            counted in the pair (unless `fmt` is given, which must have been
            measured with it) and named in the error.
        fmt: `model`'s pair format, when the caller already has it.
        fixed: Text each window is put between (a `content_template`'s text
            before and after the content), counted against the window.

    Raises:
        ValueError: The query (with the pair's fixed tokens) leaves no more
            than `passage_overlap` tokens.
    """
    fmt = fmt or pair_format(model, prompt)
    size, budget, reserved = document_budget(
        fmt, query, passage_tokens, setting="passage_tokens"
    )
    taken = _fixed_tokens(fmt, fixed)
    size -= taken
    reserved += taken
    if size <= passage_overlap:
        what, fix = _what_to_shorten(prompt)
        msg = (
            f"{what} and the model's fixed tokens take {reserved} of the "
            f"{budget} tokens per pair, leaving {size} for each passage window "
            f"(passage_overlap is {passage_overlap}); shorten {fix} or raise "
            "passage_tokens"
        )
        raise ValueError(msg)
    spans = fmt.spans(text)
    size = _shrink_to_fit(fmt, query, text, spans, size, budget, fixed)
    return windows(text, spans, max(size, passage_overlap + 1), passage_overlap)


def fit_to_model(
    fmt: PairFormat,
    query: str,
    texts: Sequence[str],
    *,
    prompt: str | None = None,
) -> list[str]:
    """Each text cut to what fits beside `query` in one pair of the model.

    For `long_documents="truncate"`: the document is cut here, so the model's
    own truncation (which may cut the query, or a template's closing tokens)
    never runs. A scorer with no known `max_length` gets the texts as they are,
    and so does a text whose query and fixed text already fill the pair: the
    model truncates that pair itself, as it always did (logged as a warning;
    `"max_passage"` refuses such a query instead). `prompt` (the instruction
    `fmt` was measured with) is only named in that warning.
    """
    if fmt.max_length is None or fmt.in_words:
        return list(texts)
    size, budget, _ = document_budget(fmt, query, None, setting="max_length")
    cut: list[str] = []
    for text in texts:
        before, content, after = content_parts(text)
        room = size - _fixed_tokens(fmt, (before, after))
        spans = fmt.spans(content)
        if len(spans) <= room:
            cut.append(text)
            continue
        if room < 1:
            # sentence-transformers then cuts the pair itself: a text pair
            # loses the ends of both texts (longest first), a chat template
            # is cut from the right and its closing turn restored, so the
            # document and the query's end are gone.
            what, fix = _what_to_shorten(prompt)
            logger.warning(
                "%s, the model's fixed tokens and any content_template text "
                "take %d of the %d tokens the model reads per pair, leaving none "
                "for the document; the model truncates the pair itself, cutting "
                "the query (a chat-template model drops the whole document): "
                "shorten %s",
                what,
                budget - room,
                budget,
                fix,
            )
            cut.append(text)
            continue
        fitted = _shrink_to_fit(
            fmt, query, content, spans, room, budget, (before, after)
        )
        cut.append(before + content[: spans[max(fitted, 1) - 1][1]] + after)
    return cut


def scoring_units(
    model: object,
    query: str,
    texts: Sequence[str],
    *,
    long_documents: str,
    passage_tokens: int | None,
    passage_overlap: int,
    prompt: str | None = None,
) -> list[list[tuple[Span | None, str]]]:
    """Per text, what the model scores: its windows, or itself cut to fit.

    Args:
        model: The loaded model or scorer.
        query: The query.
        texts: The candidate texts.
        long_documents: `"max_passage"` (windows) or `"truncate"`.
        passage_tokens: Tokens per pair for windows (None: `max_length`).
        passage_overlap: Tokens shared by neighbouring windows.
        prompt: The prompt (instruction) sent with every pair, if any.

    Returns:
        Per text, its `(span, text)` units: every window with its character
        span for `"max_passage"`; one unit with no span for `"truncate"`. A
        `RenderedText` (a `content_template`) has only its content cut: each
        unit holds the template's fixed text whole, and a window's span is
        that of its content in the rendered text.
    """
    if long_documents == "truncate":
        if getattr(model, "tokenizer", None) is None:
            return [[(None, text)] for text in texts]
        fitted = fit_to_model(pair_format(model, prompt), query, texts, prompt=prompt)
        return [[(None, text)] for text in fitted]
    fmt = pair_format(model, prompt)
    found: dict[str, list[tuple[Span | None, str]]] = {}
    for text in texts:
        if text in found:
            continue
        before, content, after = content_parts(text)
        spans = passage_windows(
            model,
            query,
            content,
            passage_tokens=passage_tokens,
            passage_overlap=passage_overlap,
            prompt=prompt,
            fmt=fmt,
            fixed=(before, after),
        )
        # Spans are in the scored text: the content's, moved past the prefix.
        found[text] = [
            ((len(before) + a, len(before) + b), before + content[a:b] + after)
            for a, b in spans
        ]
    return [found[text] for text in texts]


def truncate_texts(fmt: PairFormat, texts: Sequence[str], max_tokens: int) -> list[str]:
    """Each text cut to its first `max_tokens` tokens (`max_tokens_per_doc`).

    Raises:
        ValueError: `max_tokens` below 1.
    """
    if max_tokens < 1:
        msg = f"max_tokens must be at least 1, got {max_tokens}"
        raise ValueError(msg)
    cut = []
    for text in texts:
        found = fmt.spans(text)
        cut.append(
            text[: found[max_tokens - 1][1]] if len(found) > max_tokens else text
        )
    return cut
