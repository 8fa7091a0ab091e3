"""Scoring within a time budget: `deadline_ms`.

The deadline counts from the moment the engine receives a call's candidates
(a first stage's own time is not in it; loading the model on first use is).
Candidates are scored in first-stage order, in batches of `batch_size` pairs
(4 on CPU, 32 on an accelerator when unset); a candidate's passage windows
(`long_documents="max_passage"`) stay in one batch. With several queries in
one call (`score_batch`, a retriever's `batch`), the order goes rank by rank
across them: every query's first candidate, then every query's second, and
so on, so each query gets its best first-stage candidates scored first.

**Predicting the next batch.** Before each batch the engine predicts its time
as its pairs times the slowest time per pair measured in this call so far
(the slowest, not the mean, so that a batch of long texts after short ones
does not overrun). Before a call's first batch it uses the slowest of the
engine's previous call with a deadline. When the clock plus that prediction
passes the deadline, scoring stops, and every candidate not scored yet
follows the scored ones in first-stage order, marked unscored. Only an
engine's very first batch has nothing to predict from: it is scored whenever
the deadline has not passed yet, and may overrun it by that one batch.

Score-cache hits (and texts repeated within the call) count as scored and
cost nothing, wherever they sit in the order. A scorer that keeps a time
budget itself (`DeadlineScorer`, such as `RemoteCrossEncoder`) gets every
pair still to score, in that order, with the time left, and says which it
scored. Nothing here raises because the time ran out.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from langchain_ce_rerank.engine.aggregation import PassageAggregation, best_windows
from langchain_ce_rerank.engine.finite import require_finite
from langchain_ce_rerank.engine.results import ScoredText, UnscoredText
from langchain_ce_rerank.engine.windows import Span

__all__ = ["Budget", "Clock", "DeadlinePlan", "Pace"]

Clock = Callable[[], float]
"""Seconds on a monotonic clock, such as `time.monotonic` (tests inject one)."""

Pair = tuple[str, str]
Units = list[list[list[tuple[Span | None, str]]]]


class Pace:
    """The slowest seconds per pair an engine measured in its latest deadline call.

    Shared by the engine's threads; read when a call starts, written as its
    batches are measured.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds_per_pair: float | None = None

    def get(self) -> float | None:
        """The last measurement, or None before any."""
        with self._lock:
            return self._seconds_per_pair

    def set(self, seconds_per_pair: float) -> None:
        """Remember a call's slowest seconds per pair."""
        with self._lock:
            self._seconds_per_pair = seconds_per_pair


class Budget:
    """One call's deadline, and the batch times measured under it.

    Example:
        ```python
        from langchain_ce_rerank.engine.deadline import Budget, Pace

        now = [0.0]
        budget = Budget(50, lambda: now[0], Pace())
        print(budget.allows(4))  # True: nothing measured, deadline not passed
        now[0] = 0.02
        budget.record(4, 0.02)  # 4 pairs took 20 ms: 5 ms a pair
        print(budget.allows(4), budget.allows(8))  # True False (30 ms left)
        ```
    """

    def __init__(self, deadline_ms: float, clock: Clock, pace: Pace) -> None:
        """Start the budget now.

        Args:
            deadline_ms: Milliseconds from now.
            clock: The clock to read.
            pace: The engine's memory of earlier calls, read now and updated
                by `record`.
        """
        self.clock = clock
        self.deadline = clock() + deadline_ms / 1000.0
        self._pace = pace
        self._prior = pace.get()
        self._slowest: float | None = None

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.deadline - self.clock()

    def per_pair(self) -> float | None:
        """The predicted seconds per pair: this call's slowest, else the last call's."""
        return self._slowest if self._slowest is not None else self._prior

    def allows(self, pairs: int) -> bool:
        """Whether a batch of `pairs` pairs is predicted to end by the deadline."""
        left = self.left()
        if left <= 0:
            return False
        per_pair = self.per_pair()
        return per_pair is None or per_pair * pairs <= left

    def record(self, pairs: int, seconds: float) -> None:
        """Measure a batch of `pairs` pairs that took `seconds`."""
        if pairs < 1:
            return
        per_pair = max(seconds, 0.0) / pairs
        if self._slowest is None or per_pair > self._slowest:
            self._slowest = per_pair
        self._pace.set(self._slowest)


@dataclass
class _Candidate:
    item: int
    position: int
    pairs: list[Pair]


@dataclass
class DeadlinePlan:
    """Which pairs to score next, in first-stage order, and what is known.

    Built from `Reranker._prepare`'s units (per item, per text, its windows)
    and what the cache already knows; `next_batch` hands out whole candidates
    up to a number of pairs, `record` takes their scores, and `results`
    turns everything known into `ScoredText`s, unscored where a window's score
    is missing.
    """

    queries: Sequence[str]
    units: Units
    known: dict[Pair, float]
    _queue: list[_Candidate] = field(init=False)
    _next: int = field(init=False, default=0)
    fresh: dict[Pair, float] = field(init=False, default_factory=dict)
    """Pairs scored by the model during this call (for the cache)."""

    def __post_init__(self) -> None:
        longest = max((len(per_text) for per_text in self.units), default=0)
        self._queue = [
            _Candidate(
                item,
                position,
                [(self.queries[item], text) for _, text in self.units[item][position]],
            )
            for position in range(longest)
            for item in range(len(self.units))
            if position < len(self.units[item])
        ]

    def _missing(self, candidate: _Candidate, taken: set[Pair]) -> list[Pair]:
        out = []
        for pair in candidate.pairs:
            if pair not in self.known and pair not in taken:
                taken.add(pair)
                out.append(pair)
        return out

    def rest(self) -> list[Pair]:
        """Every pair not known yet, once each, in first-stage order."""
        taken: set[Pair] = set()
        return [p for c in self._queue[self._next :] for p in self._missing(c, taken)]

    def next_batch(self, batch_pairs: int) -> list[Pair]:
        """The next candidates' unknown pairs, at most `batch_pairs` of them.

        Whole candidates only, and at least one; empty once every candidate
        is known.
        """
        batch: list[Pair] = []
        taken: set[Pair] = set()
        while self._next < len(self._queue):
            missing = self._missing(self._queue[self._next], set(taken))
            if batch and len(batch) + len(missing) > batch_pairs:
                break
            batch.extend(missing)
            taken.update(missing)
            self._next += 1
        return batch

    def record(
        self, pairs: Sequence[Pair], scores: Sequence[float | None], model: object
    ) -> None:
        """Raw scores for `pairs`, in order; None leaves a pair unscored.

        Args:
            pairs: The pairs scored.
            scores: Their raw scores, None for a pair the deadline left
                unscored.
            model: The model or scorer that returned them (named in errors).

        Raises:
            RuntimeError: A score count other than the pairs'.
            NonFiniteScoreError: A score is NaN or infinite.
        """
        if len(scores) != len(pairs):
            msg = f"the model returned {len(scores)} scores for {len(pairs)} pairs"
            raise RuntimeError(msg)
        given = [(p, s) for p, s in zip(pairs, scores, strict=True) if s is not None]
        checked = require_finite([score for _, score in given], model)
        for (pair, _), score in zip(given, checked, strict=True):
            self.known[pair] = self.fresh[pair] = score

    def results(
        self,
        activate: Callable[[list[float]], list[float]],
        aggregation: PassageAggregation = "max",
    ) -> list[list[ScoredText]]:
        """Per item, per text: its windows' aggregated activated score, or unscored."""
        flat = [
            self.known.get((self.queries[item], text), math.nan)
            for item, per_text in enumerate(self.units)
            for windows in per_text
            for _, text in windows
        ]
        scored = best_windows(self.units, activate(flat), aggregation)
        return [
            [
                text_score
                if all(
                    (self.queries[item], text) in self.known
                    for _, text in self.units[item][position]
                )
                else UnscoredText(math.nan)
                for position, text_score in enumerate(per_text)
            ]
            for item, per_text in enumerate(scored)
        ]
