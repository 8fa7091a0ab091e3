"""How a scorer counts tokens, and what a (query, document) pair costs it.

Windows and truncation cut the document only, so the engine needs two things
from a scorer: the document's tokens as character spans (where to cut), and
how many tokens the scorer's pair format spends beside the document (the
query, special tokens, a prompt or chat template). `PairFormat` holds both.

- A loaded `sentence_transformers.CrossEncoder` is measured, not guessed: the
  pair cost is the length of what it builds for `(query, "")` with its own
  `preprocess`, so every family's separators and templates count as they are.
- A scorer without `predict` (a `RemoteCrossEncoder`, any `score()` object)
  may name its tokenizer in a `tokenizer` attribute (`TokenizedScorer`): a
  Hugging Face id or folder, a loaded Hugging Face tokenizer, or a function
  giving each token's character span.
- Anything else counts whitespace-separated words, and says so once per
  scorer (a `logging` warning naming the fix).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from langchain_ce_rerank.engine.protocols import CrossEncoderLike

__all__ = [
    "PairFormat",
    "Span",
    "TokenSpans",
    "load_tokenizer",
    "pair_format",
    "token_spans_of",
    "tokenizer_spans",
    "word_spans",
]

logger = logging.getLogger(__name__)

Span: TypeAlias = tuple[int, int]
TokenSpans: TypeAlias = Callable[[str], list[Span]]

_WORD = re.compile(r"\S+")
# transformers' "no limit" sentinel for model_max_length is ~1e30.
_NO_LIMIT = 1_000_000


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
        found = [(int(a), int(b)) for a, b in encoded["offset_mapping"] if b > a]
        return _clip_shared(found)

    return spans


def _clip_shared(found: list[Span]) -> list[Span]:
    """Each token's span ended where the next token's begins, if it overlaps it.

    Some tokens share characters with the next: SentencePiece gives a lone
    "▁" (before a word it cannot start with "▁x") the span of the word's first
    character, and byte-level BPE may split one character into several byte
    tokens, each with that character's span. A cut after such a token must not
    take the next token's characters, which would tokenize into more tokens
    than were counted; ended at the next one's start, the cut keeps at most
    the tokens counted (a zero-width span where the token has no characters
    of its own).
    """
    clipped = list(found)
    for i in range(len(clipped) - 1):
        a, b = clipped[i]
        following = clipped[i + 1][0]
        if a <= following < b:
            clipped[i] = (a, following)
    return clipped


@dataclass(frozen=True)
class PairFormat:
    """How one scorer counts tokens and builds a (query, document) pair.

    Example:
        ```python
        from langchain_ce_rerank.engine.tokens import pair_format


        class Overlap:  # a scorer that names no tokenizer counts words
            def score(self, text_pairs):
                return [0.0 for _ in text_pairs]


        fmt = pair_format(Overlap())
        print(fmt.in_words, fmt.reserved("red apple"))  # True 2
        ```
    """

    spans: TokenSpans
    """The document's tokens as character spans."""
    pair_length: Callable[[str, str], int] | None
    """Tokens of a whole (query, document) pair as the scorer builds it
    (special tokens, prompt and template included); None: the query's own
    tokens are all a pair spends beside the document."""
    max_length: int | None
    """Tokens the model reads per pair, where the scorer says; else None."""
    in_words: bool = False
    """True when no tokenizer is known and words stand in for tokens."""

    def reserved(self, query: str) -> int:
        """Tokens a pair with `query` spends beside its document."""
        if self.pair_length is not None:
            return self.pair_length(query, "")
        return len(self.spans(query))


def _max_length(model: Any, tokenizer: Any) -> int | None:
    for value in (
        getattr(model, "max_seq_length", None),
        getattr(tokenizer, "model_max_length", None),
    ):
        if isinstance(value, int) and 0 < value < _NO_LIMIT:
            return value
    return None


def _cross_encoder_pair_length(
    model: Any, prompt: str | None
) -> Callable[[str, str], int]:
    """What `model.predict` feeds the network for one pair, in tokens."""
    preprocess = getattr(model, "preprocess", None)
    if preprocess is None:  # a duck-typed CrossEncoder: its tokenizer's pair
        return _hf_pair_length(model.tokenizer)

    def length(query: str, document: str) -> int:
        kwargs: dict[str, Any] = {
            # Untruncated, so a pair that would not fit measures its real size.
            "processing_kwargs": {"text": {"truncation": False, "verbose": False}},
        }
        if prompt is not None:
            kwargs["prompt"] = prompt
        features = preprocess([(query, document)], **kwargs)
        return int(features["input_ids"].shape[-1])

    return length


def _hf_pair_length(tokenizer: Any) -> Callable[[str, str], int]:
    def length(query: str, document: str) -> int:
        if not document:
            # An empty text_pair reads as no pair at all (one [SEP] short):
            # measure a one-word document and take its tokens away.
            probe = "a"
            alone = tokenizer(probe, add_special_tokens=False, verbose=False)
            return length(query, probe) - len(alone["input_ids"])
        encoded = tokenizer(query, document, truncation=False, verbose=False)
        return len(encoded["input_ids"])

    return length


def _is_hf_tokenizer(value: object) -> bool:
    # Duck-typed so the engine needs no transformers import to tell: every
    # transformers tokenizer has these, a plain span function does not.
    return callable(value) and hasattr(value, "num_special_tokens_to_add")


@functools.lru_cache(maxsize=16)
def load_tokenizer(name: str) -> Any:
    """A Hugging Face tokenizer by Hub id or local folder, loaded once.

    Offline-safe: with `HF_HUB_OFFLINE=1` only the local cache or folder is
    read, and a tokenizer not found there is an error saying so.

    Raises:
        ValueError: The tokenizer cannot be found or loaded.
    """
    from langchain_ce_rerank.optional import require

    transformers = require(
        "transformers", extra="torch", feature="tokenizer=<Hugging Face id or folder>"
    )
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        return transformers.AutoTokenizer.from_pretrained(
            name, local_files_only=offline or Path(name).is_dir()
        )
    except (OSError, ValueError) as err:
        where = "the local Hugging Face cache" if offline else "the Hub or cache"
        msg = (
            f"tokenizer {name!r} could not be loaded from a folder or {where} "
            f"({type(err).__name__}: {err}); pass a local folder holding "
            "tokenizer.json, a loaded tokenizer, or a function returning each "
            "token's (start, end) character span"
        )
        raise ValueError(msg) from err


def token_spans_of(
    spec: object,
) -> tuple[TokenSpans, Callable[[str, str], int] | None, Any]:
    """A named tokenizer as (span function, pair length or None, HF tokenizer).

    Args:
        spec: A Hugging Face id or folder (`str` or path), a loaded Hugging
            Face tokenizer, or a function `text -> [(start, end), ...]`.

    Raises:
        TypeError: `spec` is none of those.
        ValueError: An id or folder that cannot be loaded.
    """
    if isinstance(spec, str | os.PathLike):
        spec = load_tokenizer(os.fspath(spec))
    if _is_hf_tokenizer(spec):
        return tokenizer_spans(spec), _hf_pair_length(spec), spec
    if callable(spec):
        function: TokenSpans = spec
        return function, None, None
    msg = (
        f"tokenizer must be a Hugging Face id or folder, a loaded tokenizer, or a "
        f"function returning (start, end) token spans; got {type(spec).__name__}"
    )
    raise TypeError(msg)


_warned: weakref.WeakSet[Any] = weakref.WeakSet()
_warned_ids: set[int] = set()


def _warn_words(model: object) -> None:
    """Log, once per scorer, that its windows are counted in words."""
    try:
        if model in _warned:
            return
        _warned.add(model)
    except TypeError:  # not weak-referenceable: remember its id instead
        if id(model) in _warned_ids:
            return
        _warned_ids.add(id(model))
    logger.warning(
        "%s names no tokenizer, so windows and max_tokens_per_doc count "
        "whitespace-separated words, not the model's tokens, and text past the "
        "model's real window goes unread; name it: give the scorer a "
        "`tokenizer` (a Hugging Face id or folder, a loaded tokenizer, or a "
        "function returning token spans), e.g. RemoteCrossEncoder(url, api, "
        "tokenizer='cross-encoder/ms-marco-MiniLM-L6-v2')",
        type(model).__name__,
    )


def pair_format(
    model: object, prompt: str | None = None, *, warn: bool = True
) -> PairFormat:
    """How `model` counts tokens and what a pair costs it beside the document.

    Args:
        model: A loaded cross-encoder, or a scorer (with or without a named
            `tokenizer`).
        prompt: The prompt (instruction) the model is given with each pair,
            counted as part of the pair for a cross-encoder.
        warn: Log (once per scorer) when words stand in for tokens.

    Returns:
        Its `PairFormat`; words (logged once per scorer) when it has no
        tokenizer.
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        if warn:
            _warn_words(model)
        return PairFormat(word_spans, None, None, in_words=True)
    if isinstance(model, CrossEncoderLike) and _is_hf_tokenizer(tokenizer):
        return PairFormat(
            tokenizer_spans(tokenizer),
            _cross_encoder_pair_length(model, prompt),
            _max_length(model, tokenizer),
        )
    spans, pair_length, _ = token_spans_of(tokenizer)
    # Only the scorer's own max_seq_length: a remote server's window is its
    # own, whatever the named tokenizer's model_max_length says.
    return PairFormat(spans, pair_length, _max_length(model, None))
