"""What the engine needs from a model: the two interfaces it can drive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AsyncDeadlineScorer",
    "AsyncPairScorer",
    "CrossEncoderLike",
    "DeadlineScorer",
    "PairScorer",
    "TokenizedScorer",
]


@runtime_checkable
class CrossEncoderLike(Protocol):
    """A loaded `sentence_transformers.CrossEncoder`, or anything with its `predict`.

    The engine calls `predict(pairs, batch_size=..., show_progress_bar=...,
    activation_fn=torch.nn.Identity(), convert_to_numpy=True)` and reads
    `tokenizer` and `max_seq_length` when present (for passage windows).
    """

    def predict(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Score (query, text) pairs."""


@runtime_checkable
class PairScorer(Protocol):
    """Any scorer of (query, text) pairs: one raw score per pair, in order.

    LangChain's `BaseCrossEncoder`, `RemoteCrossEncoder` and small test
    doubles all have this shape. Windows and `max_tokens_per_doc` count a
    scorer's tokens with the tokenizer it names (`TokenizedScorer`), and
    whitespace-separated words for one that names none (logged once).
    """

    def score(self, text_pairs: Any, /) -> Sequence[float]:
        """Score (query, text) pairs."""


@runtime_checkable
class TokenizedScorer(Protocol):
    """A `PairScorer` that names the tokenizer its model counts in.

    `tokenizer` is a Hugging Face id or local folder (loaded once with
    `transformers.AutoTokenizer`; only the local cache under
    `HF_HUB_OFFLINE=1`), a loaded Hugging Face tokenizer, or a function
    `text -> [(start, end), ...]` giving each token's character span; None
    names none. Windows (`long_documents="max_passage"`), `max_tokens_per_doc`
    and `max_context_tokens` then count in it; with a Hugging Face tokenizer,
    a pair's special tokens are counted too (what it builds for the query and
    an empty document). Spans rather than a count, because a window must be
    cut at a token boundary of the original text.
    """

    tokenizer: Any

    def score(self, text_pairs: Any, /) -> Sequence[float]:
        """Score (query, text) pairs."""


@runtime_checkable
class AsyncPairScorer(Protocol):
    """A scorer that can also be awaited, such as `RemoteCrossEncoder`.

    `Reranker.ascore_batch` awaits `ascore` instead of running `score` in a
    worker thread.
    """

    def score(self, text_pairs: Any, /) -> Sequence[float]:
        """Score (query, text) pairs."""

    async def ascore(self, text_pairs: Any, /) -> Sequence[float]:
        """Score (query, text) pairs without blocking the event loop."""


@runtime_checkable
class DeadlineScorer(Protocol):
    """A scorer that keeps a time budget itself, such as `RemoteCrossEncoder`.

    Under `deadline_ms`, the engine hands such a scorer every pair still to
    score, in first-stage order, with the seconds left, instead of predicting
    batch times itself: the scorer sends them as it sees fit (a remote one as
    concurrent requests) and stops at the deadline.
    """

    def score_within(
        self, text_pairs: Any, seconds: float, /
    ) -> Sequence[float | None]:
        """One score per pair, in input order; None for a pair not scored in time.

        Must not raise because the time ran out.
        """


@runtime_checkable
class AsyncDeadlineScorer(Protocol):
    """`DeadlineScorer` for async code: `Reranker.ascore_batch` awaits it."""

    async def ascore_within(
        self, text_pairs: Any, seconds: float, /
    ) -> Sequence[float | None]:
        """Async `DeadlineScorer.score_within`."""
