"""Shaping the context: one result per source, and a token budget.

Two ranking settings that decide what reaches an LLM's context after the
cross-encoder has ordered the candidates:

- `group_by` (a metadata key, or a function of the document) with
  `max_per_group`: at most that many results per group (a source file, a
  parent document), the best first; the slots left go to the next groups.
- `max_context_tokens`: results are taken in order until their content fills
  the budget (counted by `token_counter`, the reranker's tokenizer by
  default). A result that alone is over the budget is cut to its best window
  rather than dropped.

`ranking.select` applies them after the order (and before `top_n` for the
groups, after `score_threshold` for the budget); every candidate they drop is
recorded with its reason (`DROP_REASONS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self

from langchain_ce_rerank.engine.windows import Span, word_spans

__all__ = [
    "SHAPING_OPTIONS",
    "GroupBy",
    "ShapingSettings",
    "TokenCounter",
    "check_shaping",
    "fit_budget",
    "group_keys",
    "per_group",
    "trim_to_tokens",
]

GroupBy: TypeAlias = str | Callable[[Any], Hashable]
"""A metadata key, or a function of the door's candidate (a LangChain
`Document`, a LlamaIndex node, a plain text for `Reranker.rank`)."""
TokenCounter: TypeAlias = Callable[[str], int]
"""Tokens in a text, e.g. `lambda text: len(tiktoken_encoding.encode(text))`."""

SHAPING_OPTIONS = ("group_by", "max_per_group", "max_context_tokens")
"""The shaping settings one call may override (part of `PER_CALL_OPTIONS`)."""

T = TypeVar("T")


class ShapingSettings(BaseModel):
    """The context-shaping part of `RankingSettings` (see the module).

    Example:
        ```python
        from langchain_ce_rerank.engine import RankingSettings

        settings = RankingSettings(group_by="source", max_context_tokens=800)
        print(settings.for_call(max_per_group=2).max_per_group)  # 2
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    group_by: GroupBy | None = None
    """Keep at most `max_per_group` results per group, the best first; the
    slots left go to the next groups (`top_n` counts what is kept). A
    metadata key (`"source"`: one result per file; `"doc_id"`: per parent
    document, as `load_corpus` and LangChain's `ParentDocumentRetriever` name
    it), or a function of the candidate returning its group (None: a group of
    its own). A candidate without the key is an error naming it."""

    max_per_group: int | None = Field(default=None, ge=1)
    """Results kept per group with `group_by`; None means 1."""

    max_context_tokens: int | None = Field(default=None, ge=1)
    """Return results in order while their content fits this many tokens in
    all (counted by `token_counter`); the first that does not fit, and every
    one after it, is dropped. A result that alone is over the budget is cut to
    its best window (the `long_documents="max_passage"` span; the start of
    the text otherwise), shortened further if that window is still over, and
    marked `metadata["context_cut"]`. Each result carries
    `metadata["context_tokens"]`. None: no budget."""

    token_counter: TokenCounter | None = Field(default=None, exclude=True)
    """Counts the tokens of a text for `max_context_tokens`: any callable
    `str -> int`, such as your LLM's tokenizer. None uses the reranker's own
    tokenizer (whitespace-separated words for a scorer without one)."""

    @field_validator("group_by", mode="before")
    @classmethod
    def _key_or_function(cls, group_by: object) -> object:
        check_shaping(group_by, None, None)
        return group_by

    @model_validator(mode="after")
    def _check_shaping(self) -> Self:
        check_shaping(self.group_by, self.max_per_group, self.max_context_tokens)
        return self


def check_shaping(
    group_by: object, max_per_group: object, max_context_tokens: object
) -> None:
    """Reject shaping settings that cannot work, with what to pass instead.

    Raises:
        ValueError: `group_by` is neither a key nor a function,
            `max_per_group` or `max_context_tokens` is not a positive integer,
            or `max_per_group` comes without `group_by`.
    """
    if group_by is not None and not (
        (isinstance(group_by, str) and group_by) or callable(group_by)
    ):
        msg = (
            "group_by must be a metadata key (e.g. 'source'), a function of the "
            f"document returning its group, or None, got {group_by!r}"
        )
        raise ValueError(msg)
    for name, value in (
        ("max_per_group", max_per_group),
        ("max_context_tokens", max_context_tokens),
    ):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            msg = f"{name} must be a positive integer or None, got {value!r}"
            raise ValueError(msg)
    if max_per_group is not None and group_by is None:
        msg = (
            f"max_per_group={max_per_group} needs group_by=...: the metadata key "
            "(e.g. 'source') or function that names each candidate's group"
        )
        raise ValueError(msg)


class _Alone:
    """The group of a candidate whose group function returned None."""

    __slots__ = ()


def group_keys(
    group_by: GroupBy,
    candidates: Sequence[T],
    metadata: Callable[[T], Mapping[str, Any]],
    label: Callable[[int], str],
) -> list[Hashable]:
    """Each candidate's group, for `group_by`.

    Args:
        group_by: A metadata key, or a function of a candidate.
        candidates: The door's candidates (documents, nodes, texts).
        metadata: A candidate's metadata (read for a key).
        label: How to name candidate `i` in an error.

    Returns:
        One hashable group per candidate, in input order; a function's None
        becomes a group of that candidate alone.

    Raises:
        ValueError: A candidate lacks the metadata key.
        TypeError: A group is not hashable (a list, a dict).
    """
    keys: list[Hashable] = []
    for i, candidate in enumerate(candidates):
        if isinstance(group_by, str):
            found = metadata(candidate)
            if group_by not in found:
                msg = (
                    f"group_by={group_by!r}: {label(i)} has no metadata[{group_by!r}] "
                    f"(its keys: {sorted(found)}); give every candidate one, or "
                    "group with a function: group_by=lambda doc: ..."
                )
                raise ValueError(msg)
            key = found[group_by]
        else:
            key = group_by(candidate)
            if key is None:
                key = _Alone()
        if not isinstance(key, Hashable):
            msg = (
                f"group_by={group_by!r} gave {label(i)} the group {key!r}, a "
                f"{type(key).__name__}, which cannot name a group; return a "
                "string, number or tuple"
            )
            raise TypeError(msg)
        keys.append(key)
    return keys


def per_group(
    order: Sequence[int], groups: Sequence[Hashable], limit: int
) -> tuple[list[int], list[int]]:
    """(kept, dropped): at most `limit` candidates of each group, in `order`.

    Args:
        order: Candidate indices, best first.
        groups: Each candidate's group, by index.
        limit: Candidates kept per group.
    """
    seen: dict[Hashable, int] = {}
    kept: list[int] = []
    full: list[int] = []
    for i in order:
        count = seen.get(groups[i], 0)
        if count < limit:
            seen[groups[i]] = count + 1
            kept.append(i)
        else:
            full.append(i)
    return kept, full


def trim_to_tokens(text: str, span: Span, limit: int, count: TokenCounter) -> Span:
    """The longest start of `text[span]` that counts at most `limit` tokens.

    Cut at a word's end where one fits, else inside the first word. Any
    counter works: the cut point is found by bisection on the counter's
    answers, so a counter is called about log2(words) times.

    Args:
        text: The whole text.
        span: The `(start, end)` characters to cut from its start.
        limit: Tokens allowed.
        count: The token counter.

    Returns:
        The kept `(start, end)` span (empty when not even one character fits).
    """
    start, end = span
    if count(text[start:end]) <= limit:
        return span
    ends = [start + b for _, b in word_spans(text[start:end])]
    best = _last_fitting(ends, lambda e: count(text[start:e]) <= limit)
    if best is not None:
        return (start, best)
    # Not even the first word fits: cut inside it, by characters.
    first = ends[0] if ends else end
    chars = list(range(start + 1, first))
    best = _last_fitting(chars, lambda e: count(text[start:e]) <= limit)
    return (start, start) if best is None else (start, best)


def _last_fitting(points: list[int], fits: Callable[[int], bool]) -> int | None:
    """The last of the ascending `points` that fits, by bisection (or None)."""
    low, high, best = 0, len(points) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if fits(points[middle]):
            best, low = points[middle], middle + 1
        else:
            high = middle - 1
    return best


def fit_budget(
    order: Sequence[int],
    contents: Sequence[str],
    windows: Sequence[Span | None],
    budget: int,
    count: TokenCounter,
) -> tuple[list[tuple[int, int, Span | None]], list[int]]:
    """Take candidates in `order` while their contents fit `budget` tokens.

    Args:
        order: Candidate indices, best first.
        contents: Each candidate's returned text, by index.
        windows: Each candidate's best window in its content, by index (None:
            the whole text); an over-budget candidate is cut to it.
        budget: Tokens allowed in all.
        count: The token counter.

    Returns:
        `([(index, tokens, cut)], dropped)`: the kept candidates with the
        tokens each counts and, for one cut, the kept character span (else
        None); then the indices of those that did not fit.

    Raises:
        ValueError: The counter returned something other than a whole number
            of tokens of at least 0.
    """
    kept: list[tuple[int, int, Span | None]] = []
    left = budget
    for position, i in enumerate(order):
        text = contents[i]
        tokens = _counted(count, text)
        cut: Span | None = None
        if tokens > budget:
            window = windows[i] or (0, len(text))
            cut = trim_to_tokens(text, window, budget, count)
            tokens = _counted(count, text[cut[0] : cut[1]])
            if cut[0] == cut[1]:
                return kept, list(order[position:])
        if tokens > left:
            return kept, list(order[position:])
        kept.append((i, tokens, cut))
        left -= tokens
    return kept, []


def _counted(count: TokenCounter, text: str) -> int:
    tokens = count(text)
    if (
        isinstance(tokens, bool)
        or not isinstance(tokens, int | float)
        or math.isnan(tokens)
        or tokens < 0
        or tokens != int(tokens)
    ):
        msg = (
            f"token_counter returned {tokens!r} for a text of {len(text)} "
            "characters; it must return a whole number of tokens, at least 0"
        )
        raise ValueError(msg)
    return int(tokens)
