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
    doubles all have this shape. A scorer exposes no tokenizer, so
    `long_documents="max_passage"` counts its windows in words.
    """

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
